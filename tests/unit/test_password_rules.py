"""Django's password validators are on: length 10+, not a common password, not all
digits, not like the user's name or e-mail (settings.AUTH_PASSWORD_VALIDATORS).

Issue 14: `98127364` and `petcam12` were accepted.
"""

from __future__ import annotations

import io
import re

import pytest
from django.contrib.auth.forms import AdminPasswordChangeForm
from django.contrib.auth.models import User
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.core.management import call_command

from streaming.management.commands import ensure_admin


def refusals(password: str, user: User | None = None) -> set[str]:
    try:
        validate_password(password, user)
    except ValidationError as exc:
        return {e.code for e in exc.error_list}
    return set()


@pytest.mark.parametrize(("password", "expected"), [
    ("98127364", {"password_too_short", "password_entirely_numeric"}),
    ("petcam12", {"password_too_short"}),
    ("1234567890", {"password_too_common", "password_entirely_numeric"}),
    ("password123", {"password_too_common"}),
    ("9812736401", {"password_entirely_numeric"}),
])
def test_weak_passwords_are_refused(password, expected):
    assert expected <= refusals(password)


def test_a_password_like_the_user_is_refused(db):
    user = User(username="petcam-owner", email="owner@example.org")
    assert "password_too_similar" in refusals("petcam-owner1", user)
    assert refusals("grey heron at dawn", user) == set()


def test_the_admin_s_password_form_applies_them(db):
    user = User.objects.create_user("cat", password=None)
    for weak in ("98127364", "petcam12"):
        form = AdminPasswordChangeForm(user, {"password1": weak, "password2": weak})
        assert not form.is_valid() and "password2" in form.errors
    good = AdminPasswordChangeForm(user, {"password1": "grey heron at dawn",
                                          "password2": "grey heron at dawn"})
    assert good.is_valid()


def test_ensure_admin_makes_a_password_that_passes(db):
    out = io.StringIO()
    call_command("ensure_admin", stdout=out)
    found = re.search(r"username: (\S+)\s+password: (\S+)", out.getvalue())
    assert found, out.getvalue()
    admin = User.objects.get(username=found.group(1))
    assert admin.check_password(found.group(2))
    assert refusals(found.group(2), admin) == set()


def test_ensure_admin_draws_again_when_a_draw_is_refused(db, monkeypatch):
    draws = iter(["1234567890123456", "9876543210987654", "Xq7vB2mK9pL4sT8w"])
    monkeypatch.setattr(ensure_admin, "get_random_string", lambda length: next(draws))
    assert ensure_admin.new_password(User(username="admin")) == "Xq7vB2mK9pL4sT8w"
