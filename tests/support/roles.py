"""Users with petcam roles for in-process tests (petcam_site/permissions.py)."""

from __future__ import annotations

from importlib import import_module

from django.contrib.auth.models import Group, Permission, User

ROLES = ("viewers", "operators", "admins")


def ensure_roles() -> None:
    """The groups as the migrations seed them (a transactional test's flush removes them):
    streaming 0004 makes the roles, accounts 0003 gives admins the token rights."""
    import_module("streaming.migrations.0004_seed_roles").assign_roles(Group, Permission)
    import_module("accounts.migrations.0003_admins_token_rights").retarget_admins(Group,
                                                                               Permission)


def make_user(username: str, role: str | None = None, *, cameras: tuple[str, ...] = (),
              staff: bool = False, superuser: bool = False, password: str | None = None) -> User:
    """A user in `role` (None: no role), limited to `cameras` if given."""
    from streaming.models import Camera, CameraAccess

    if superuser:
        return User.objects.create_superuser(username, password=password)
    user = User.objects.create_user(username, password=password, is_staff=staff)
    if role:
        assert role in ROLES, role
        ensure_roles()
        user.groups.add(Group.objects.get(name=role))
    for slug in cameras:
        CameraAccess.objects.create(user=user, camera=Camera.objects.get(slug=slug))
    return user
