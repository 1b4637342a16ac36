"""Which changes tell a user's open sockets, and which live video they end
(streaming/signals.py -> streaming/revocation.py), on the real in-memory channel layer.

For each change: the event the user's group gets (after the commit), and the request
the camera's media worker gets to end the user's sessions (none when the user may still
watch). End to end, with real sockets and video: tests/integration/test_revocation.py.
"""

from __future__ import annotations

import asyncio

import pytest
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.contrib.auth.models import Group, Permission
from django.test import Client

from accounts.models import ApiToken
from accounts.tokens import create_token, revoke_tokens
from streaming.models import Camera, CameraAccess
from streaming.revocation import session_credential, token_credential, user_group
from streaming.worker_rpc import worker_channel
from tests.support.roles import make_user

PASSWORD = "Correct-horse-battery-9"


class Listener:
    """A socket's stand-in: a channel in the user's group, and the default camera's
    worker channel."""

    def __init__(self, user_id: int) -> None:
        self.layer = get_channel_layer()
        async_to_sync(self.layer.flush)()
        self.channel = async_to_sync(self.layer.new_channel)()
        async_to_sync(self.layer.group_add)(user_group(user_id), self.channel)

    def _drain(self, channel: str) -> list[dict]:
        async def drain() -> list[dict]:
            got = []
            while True:
                try:
                    got.append(await asyncio.wait_for(self.layer.receive(channel), 0.05))
                except TimeoutError:
                    return got
        return async_to_sync(drain)()

    def events(self) -> list[dict]:
        return self._drain(self.channel)

    def worker_requests(self) -> list[dict]:
        return [m["args"] for m in self._drain(worker_channel("default"))]


@pytest.fixture
def alice(db):
    return make_user("alice", "viewers", password=PASSWORD)


def event(reason: str, credential: str | None = None, close_all: bool = False) -> dict:
    return {"type": "user.access_changed", "reason": reason, "credential": credential,
            "close_all": close_all}


def ended(user, reason: str, credential: str | None = None) -> dict:
    return {"user_id": user.pk, "credential": credential, "reason": reason}


def changed(alice, django_capture_on_commit_callbacks, change) -> tuple[list, list]:
    listener = Listener(alice.pk)
    with django_capture_on_commit_callbacks(execute=True):
        change()
    return listener.events(), listener.worker_requests()


def test_removed_from_the_role_both_ways(alice, django_capture_on_commit_callbacks):
    viewers = Group.objects.get(name="viewers")
    for change in (lambda: alice.groups.remove(viewers),
                   lambda: viewers.user_set.remove(alice),
                   lambda: viewers.user_set.clear(),
                   lambda: alice.groups.clear()):
        alice.groups.add(viewers)
        events, requests = changed(alice, django_capture_on_commit_callbacks, change)
        assert events == [event("roles changed")]
        assert requests == [ended(alice, "roles changed")]


def test_a_new_role_tells_the_sockets_but_ends_no_video(alice,
                                                       django_capture_on_commit_callbacks):
    operators = Group.objects.get(name="operators")
    events, requests = changed(alice, django_capture_on_commit_callbacks,
                               lambda: alice.groups.add(operators))
    assert events == [event("roles changed")]
    assert requests == []  # she may still watch: nothing to end


def test_the_roles_permissions_and_the_role_itself(alice, django_capture_on_commit_callbacks):
    viewers = Group.objects.get(name="viewers")
    watch = Permission.objects.get(codename="watch_camera")
    events, requests = changed(alice, django_capture_on_commit_callbacks,
                               lambda: viewers.permissions.remove(watch))
    assert events == [event("role permissions changed")]
    assert requests == [ended(alice, "role permissions changed")]
    viewers.permissions.add(watch)
    events, _ = changed(alice, django_capture_on_commit_callbacks,
                        lambda: watch.group_set.clear())
    assert events == [event("role permissions changed")]
    watch.group_set.add(viewers)
    events, requests = changed(alice, django_capture_on_commit_callbacks, viewers.delete)
    assert events == [event("role 'viewers' deleted")]
    assert requests == [ended(alice, "role 'viewers' deleted")]


def test_camera_access_rows(alice, django_capture_on_commit_callbacks):
    attic = Camera.objects.create(slug="attic", name="Attic")
    events, requests = changed(alice, django_capture_on_commit_callbacks,
                               lambda: CameraAccess.objects.create(user=alice, camera=attic))
    assert events == [event("camera access changed")]
    assert requests == [ended(alice, "camera access changed")]  # default: no longer hers
    events, requests = changed(alice, django_capture_on_commit_callbacks,
                               lambda: CameraAccess.objects.filter(user=alice).delete())
    assert events == [event("camera access changed")]
    assert requests == []  # all cameras again


def test_deactivation_password_and_deletion(alice, django_capture_on_commit_callbacks):
    def deactivate() -> None:
        alice.is_active = False
        alice.save()

    events, requests = changed(alice, django_capture_on_commit_callbacks, deactivate)
    assert events == [event("account changed")]
    assert requests == [ended(alice, "account changed")]

    def new_password() -> None:
        alice.set_password("Another-horse-battery-7")
        alice.save()

    events, requests = changed(alice, django_capture_on_commit_callbacks, new_password)
    assert events == [event("password changed", close_all=True)]
    assert requests == [ended(alice, "password changed")]  # everything of hers
    user_id = alice.pk
    events, requests = changed(alice, django_capture_on_commit_callbacks, alice.delete)
    assert event("account deleted", close_all=True) in events
    assert {"user_id": user_id, "credential": None, "reason": "account deleted"} in requests


def test_a_login_stamp_is_no_change(alice, django_capture_on_commit_callbacks):
    events, requests = changed(alice, django_capture_on_commit_callbacks,
                               lambda: alice.save(update_fields=["last_login"]))
    assert (events, requests) == ([], [])


def test_a_revoked_token_and_a_logout_name_their_credential(alice,
                                                            django_capture_on_commit_callbacks):
    token, _key = create_token(alice, "phone")
    tag = token_credential(token)
    events, requests = changed(alice, django_capture_on_commit_callbacks, lambda: revoke_tokens(
        ApiToken.objects.filter(pk=token.pk), by="test"))
    assert events == [event("API token revoked", tag)]
    assert requests == [ended(alice, "API token revoked", tag)]

    page = Client()
    page.force_login(alice)
    tag = session_credential(page.session.session_key)
    events, requests = changed(alice, django_capture_on_commit_callbacks,
                               lambda: page.post("/accounts/logout/"))
    assert events == [event("logged out", tag)]
    assert requests == [ended(alice, "logged out", tag)]
