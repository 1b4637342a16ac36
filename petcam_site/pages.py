"""The site's own pages around logging in and out, a password change for every user, and
the HTML 404 and 500 for browser routes (API paths keep JSON)."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth import views as auth_views
from django.http import HttpResponseServerError, JsonResponse
from django.shortcuts import redirect, render
from django.template import loader
from django.templatetags.static import static
from django.urls import reverse_lazy
from django.utils.translation import gettext as _
from django.views.decorators.csrf import csrf_exempt

from petcam_site.api_errors import not_found as json_not_found

# Machine paths answer JSON (the documented error format), pages answer HTML. /static/
# is for scripts and stylesheets: a missing or out-of-folder file gets the JSON 404.
API_PREFIXES = ("/api/", "/whep/", "/static/")


class LogoutView(auth_views.LogoutView):
    """Log out, then the login page with a short note (not the admin's logged-out page)."""

    next_page = reverse_lazy("login")

    def post(self, request, *args, **kwargs):
        response = super().post(request, *args, **kwargs)
        # after the session is flushed: the note travels in the messages cookie
        messages.info(request, _("You are logged out."))
        return response


class PasswordChangeView(auth_views.PasswordChangeView):
    """Any logged-in user, staff or not; Django's password validators apply."""

    template_name = "password_change.html"
    success_url = reverse_lazy("account")

    def form_valid(self, form):
        response = super().form_valid(form)  # keeps this session logged in
        messages.success(self.request, _("Your password was changed."))
        return response


@csrf_exempt  # a 404 must stay a 404 for DELETE/POST too, not a CSRF page
def not_found(request, exception=None):
    """JSON for the API, our page for everything a browser opens."""
    if request.path.startswith(API_PREFIXES):
        return json_not_found(request, exception)
    return render(request, "404.html", status=404)


def favicon(request):
    """Browsers ask for /favicon.ico even with a <link rel=icon>: send them to the SVG
    (resolved per request, so a hashed static name in production works too)."""
    return redirect(static("petcam/favicon.svg"))


def server_error(request):
    """JSON for the API, our page for browsers. Rendered without the request's context:
    whatever failed (the database, a context processor) must not fail this page too."""
    if request.path.startswith(API_PREFIXES):
        return JsonResponse({"error": "server_error",
                             "detail": "Something went wrong on the server; try again."},
                            status=500)
    return HttpResponseServerError(loader.get_template("500.html").render())
