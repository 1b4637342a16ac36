"""A crash shows our 500 page to a browser and the documented JSON error to the API
(issue 17: no page that is not ours). This module is also the URL map of its tests:
the site's routes plus two that fail."""

from __future__ import annotations

import pytest
from django.db import OperationalError
from django.test import Client
from django.urls import path

from petcam_site.urls import urlpatterns as site_urlpatterns


def crash(request):
    raise RuntimeError("a bug")


def no_database(request):
    raise OperationalError("the database went away")


urlpatterns = [path("crash/", crash), path("api/crash/", crash),
               path("db-down/", no_database), *site_urlpatterns]
handler500 = "petcam_site.pages.server_error"


@pytest.fixture
def client(settings) -> Client:
    settings.ROOT_URLCONF = __name__
    return Client(raise_request_exception=False)


def test_a_page_that_crashes_shows_ours(db, client):
    for url in ("/crash/", "/db-down/"):
        reply = client.get(url)
        assert reply.status_code == 500, url
        assert reply["Content-Type"].startswith("text/html"), url
        text = reply.content.decode()
        assert 'data-testid="server-error"' in text and "Traceback" not in text, url
        assert "a bug" not in text and "database went away" not in text, url


def test_the_api_keeps_json(db, client):
    reply = client.get("/api/crash/")
    assert reply.status_code == 500
    assert reply.json() == {"error": "server_error",
                            "detail": "Something went wrong on the server; try again."}
