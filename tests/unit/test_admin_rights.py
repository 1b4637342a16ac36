"""The admin under accounts/rights.py: an `admins`-group member manages the users below
them, never a superuser or their own rights, and the token list shows no secret.

Issue 14: the `admins` group could make itself superuser and read every API token in
clear (DRF's token admin). Forms are read from the real admin pages and posted back
with the probe's changes, as a browser would.
"""

from __future__ import annotations

import re

import pytest
from django.contrib.auth.models import Group, Permission, User
from django.test import Client

from accounts.models import ApiToken
from tests.support.admin_forms import form_fields, with_changes
from tests.support.roles import make_user
from tests.support.tokens import make_token


def form_of(client: Client, url: str) -> dict[str, list[str]]:
    page = client.get(url)
    assert page.status_code == 200, (url, page.status_code)
    return form_fields(page.content.decode())


def submit(client: Client, url: str, **changes):
    """GET the admin form, apply `changes` (a list replaces a field, None removes it),
    POST it back."""
    return client.post(url, with_changes(form_of(client, url), **changes))


def perm(codename: str) -> Permission:
    return Permission.objects.get(codename=codename)


def change_url(user: User) -> str:
    return f"/admin/auth/user/{user.pk}/change/"


@pytest.fixture
def world(db):
    alice = make_user("alice", "admins", staff=True)
    root = make_user("root", superuser=True)
    bob = make_user("bob", "viewers")
    # a group beyond the admins' rights (sessions are nobody's but a superuser's)
    powers = Group.objects.create(name="powers")
    powers.permissions.add(perm("delete_session"))
    client = Client()
    client.force_login(alice)
    return {"alice": alice, "root": root, "bob": bob, "powers": powers, "client": client}


def test_an_admin_cannot_make_themselves_superuser(world):
    alice, client = world["alice"], world["client"]
    page = client.get(change_url(alice)).content.decode()
    assert 'name="is_superuser"' not in page  # not even shown
    admins, viewers = Group.objects.get(name="admins"), Group.objects.get(name="viewers")
    reply = submit(client, change_url(alice), is_superuser="on", is_staff="on",
                   groups=[admins.pk, viewers.pk, world["powers"].pk],
                   user_permissions=[perm("delete_session").pk], first_name="Alice")
    assert reply.status_code == 302, re.findall(r"errorlist.{0,300}", reply.content.decode())
    alice.refresh_from_db()
    assert alice.first_name == "Alice"  # the page did save: the rights were simply not taken
    assert not alice.is_superuser
    assert list(alice.groups.values_list("name", flat=True)) == ["admins"]
    assert not alice.user_permissions.exists()
    assert not alice.has_perm("sessions.delete_session")


def test_an_admin_cannot_drop_their_own_staff_flag_or_camera_limits(world):
    from streaming.models import Camera, CameraAccess

    alice, client = world["alice"], world["client"]
    CameraAccess.objects.create(user=alice, camera=Camera.objects.get(slug="default"))
    data = form_of(client, change_url(alice))
    assert "is_staff" not in data and "groups" not in data  # read-only on one's own page
    reply = submit(client, change_url(alice), **{"camera_access-0-DELETE": "on"})
    assert reply.status_code == 302
    assert CameraAccess.objects.filter(user=alice).count() == 1


def test_an_admin_never_sees_or_edits_a_superuser(world):
    client, root = world["client"], world["root"]
    listing = client.get("/admin/auth/user/").content.decode()
    assert "bob" in listing and ">root<" not in listing
    # like a user that does not exist: back to the admin's index
    for reply in (client.get(change_url(root)),
                  client.post(change_url(root), {"username": "root", "is_active": ""})):
        assert (reply.status_code, reply["Location"]) == (302, "/admin/")
    password = client.post(f"/admin/auth/user/{root.pk}/password/",
                           {"password1": "taken over 12345", "password2": "taken over 12345"})
    assert password.status_code in (403, 404)
    assert client.post(f"/admin/auth/user/{root.pk}/delete/", {"post": "yes"}).status_code \
        in (302, 403, 404)
    root.refresh_from_db()
    assert root.is_active and root.check_password("taken over 12345") is False


def test_an_admin_grants_only_what_they_hold(world):
    client, bob = world["client"], world["bob"]
    operators = Group.objects.get(name="operators")
    ok = submit(client, change_url(bob), groups=[operators.pk], is_staff="on")
    assert ok.status_code == 302
    assert set(bob.groups.values_list("name", flat=True)) == {"operators"}
    for changes in ({"groups": [world["powers"].pk]},
                    {"user_permissions": [perm("delete_session").pk]},
                    {"user_permissions": [perm("add_apitoken").pk]}):
        refused = submit(client, change_url(bob), **changes)
        assert refused.status_code == 200 and b"Select a valid choice" in refused.content
    bob.refresh_from_db()
    assert not bob.has_perm("sessions.delete_session") and not bob.is_superuser


def test_a_user_with_rights_beyond_the_admin_s_is_out_of_reach(world):
    client, bob = world["client"], world["bob"]
    bob.groups.add(world["powers"])
    assert client.get(change_url(bob)).status_code == 200  # seen, read-only
    reply = client.post(change_url(bob), {"username": "bob", "groups": []})
    assert reply.status_code == 403
    assert bob.groups.filter(name="powers").exists()


def test_groups_an_admin_is_in_or_that_exceed_them_are_read_only(world):
    client = world["client"]
    admins = Group.objects.get(name="admins")
    url = f"/admin/auth/group/{admins.pk}/change/"
    assert client.get(url).status_code == 200
    before = set(admins.permissions.values_list("pk", flat=True))
    reply = client.post(url, {"name": "admins",
                              "permissions": [*before, perm("delete_session").pk]})
    assert reply.status_code == 403
    assert set(admins.permissions.values_list("pk", flat=True)) == before
    powers = world["powers"]
    assert client.post(f"/admin/auth/group/{powers.pk}/change/",
                       {"name": "powers", "permissions": []}).status_code == 403
    # a new group may hold only the admin's own permissions
    refused = client.post("/admin/auth/group/add/",
                          {"name": "sneaky", "permissions": [perm("delete_session").pk]})
    assert refused.status_code == 200 and b"Select a valid choice" in refused.content
    assert not Group.objects.filter(name="sneaky").exists()
    made = client.post("/admin/auth/group/add/",
                       {"name": "watchers", "permissions": [perm("watch_camera").pk]})
    assert made.status_code == 302 and Group.objects.filter(name="watchers").exists()


def test_the_token_list_shows_no_secret_and_admins_only_revoke(world):
    client, bob, root = world["client"], world["bob"], world["root"]
    bob_key, root_key = make_token(bob, "bob's phone"), make_token(root, "root's script")
    listing = client.get("/admin/accounts/apitoken/")
    assert listing.status_code == 200
    html = listing.content.decode()
    assert "bob&#x27;s phone" in html and f"{bob_key[:6]}…" in html
    assert bob_key not in html and bob_key[:15] not in html
    assert root_key[:6] not in html and "root&#x27;s script" not in html
    token = ApiToken.objects.get(user=bob)
    detail = client.get(f"/admin/accounts/apitoken/{token.pk}/change/").content.decode()
    # (the page's URLs name the row by its digest: a hash, useless to log in with)
    assert bob_key not in detail and bob_key[:15] not in detail
    # DRF's old clear-text list is gone; nobody makes a token for someone else
    assert client.get("/admin/authtoken/tokenproxy/").status_code == 404
    assert client.get("/admin/accounts/apitoken/add/").status_code == 403
    root_client = Client()
    root_client.force_login(root)
    assert root_client.get("/admin/accounts/apitoken/add/").status_code == 403
    # revoking (deleting) bob's token stops it at once
    gone = client.post(f"/admin/accounts/apitoken/{token.pk}/delete/", {"post": "yes"})
    assert gone.status_code == 302
    assert Client().get("/api/recordings/",
                        HTTP_AUTHORIZATION=f"Bearer {bob_key}").status_code in (401, 403)
    root_token = ApiToken.objects.get(user=root)
    assert client.post(f"/admin/accounts/apitoken/{root_token.pk}/delete/",
                       {"post": "yes"}).status_code in (403, 302)
    assert ApiToken.objects.filter(user=root).exists()


def test_a_superuser_is_not_limited(world):
    root_client = Client()
    root_client.force_login(world["root"])
    bob = world["bob"]
    reply = submit(root_client, change_url(bob), is_superuser="on",
                   groups=[world["powers"].pk])
    assert reply.status_code == 302
    bob.refresh_from_db()
    assert bob.is_superuser and bob.groups.filter(name="powers").exists()


def test_the_admin_pages_still_work_for_an_admin(world):
    """Sanity: the rules take rights away, not the pages."""
    client = world["client"]
    for url in ("/admin/", "/admin/auth/user/", "/admin/auth/group/", "/admin/auth/user/add/",
                "/admin/accounts/apitoken/", change_url(world["bob"])):
        assert client.get(url).status_code == 200, url
    made = submit(client, "/admin/auth/user/add/", username="carol", usable_password="true",
                  password1="grey heron at dawn", password2="grey heron at dawn")
    assert made.status_code == 302, re.findall(r"errorlist.{0,300}", made.content.decode())
    assert User.objects.filter(username="carol").exists()
    assert re.search(r"/admin/auth/user/\d+/change/", made["Location"])
