"""The events pages: the list (snapshots, filters, delete) and the rules with their editor."""

from __future__ import annotations

from django.http import Http404
from django.shortcuts import render
from django.utils.translation import gettext_lazy as _
from django.views.decorators.csrf import ensure_csrf_cookie

from petcam_site.permissions import (
    CONTROL_RECORDING,
    DELETE_RECORDINGS,
    VIEW_RECORDINGS,
    WATCH,
    role_required,
    visible_camera_slugs,
)

from .models import EventRule, known_classes
from .rules import DAY_NAMES

# The editor's day boxes: the stored value (DAY_NAMES) and its label in the user's language.
DAY_LABELS = {"mon": _("Mon"), "tue": _("Tue"), "wed": _("Wed"), "thu": _("Thu"),
              "fri": _("Fri"), "sat": _("Sat"), "sun": _("Sun")}

@role_required(VIEW_RECORDINGS)
@ensure_csrf_cookie
def events_page(request):
    return render(request, "events.html", {
        "cameras": visible_camera_slugs(request.user),
        "classes": known_classes(),
        "can_delete": request.user.has_perm(DELETE_RECORDINGS),
    })


@role_required(WATCH)
def rules_page(request):
    cameras = visible_camera_slugs(request.user)
    return render(request, "event_rules.html", {
        "rules": EventRule.objects.filter(camera__in=cameras),
        "can_change": request.user.has_perm(CONTROL_RECORDING),
    })


@role_required(CONTROL_RECORDING)
@ensure_csrf_cookie
def rule_edit_page(request, pk: int | None = None):
    cameras = visible_camera_slugs(request.user)
    rule = None
    if pk is not None:
        rule = EventRule.objects.filter(pk=pk, camera__in=cameras).first()
        if rule is None:
            raise Http404("No such event rule.")
    return render(request, "event_rule_edit.html", {
        "rule": rule.to_api() if rule else None,
        "cameras": cameras,
        "classes": known_classes(),
        "days": [(d, DAY_LABELS.get(d, d.capitalize())) for d in DAY_NAMES],
    })
