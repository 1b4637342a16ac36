"""Signal receivers that end live access when a user's rights or credentials change.

Connected in StreamingConfig.ready(). What each change does (streaming/revocation.py):

    account changed (active flag, staff/superuser), roles (groups, permissions, a role's
    permissions, a role deleted), camera access rows
        -> the user's sockets check their access again; live video on cameras the
           user may no longer watch ends
    password changed, account deleted
        -> every socket and all live video of the user end
    API token deleted (revoke, regenerate), logout
        -> the sockets and live video opened with that token / login session end

Everything runs after the transaction commits, so a socket that checks again sees the
change. Another token model (e.g. django-rest-knox) plugs in with one line:
`post_delete.connect(token_deleted, sender=OtherToken)`; its rows need `user_id` and a pk.
"""

from __future__ import annotations

import logging
from functools import partial

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.contrib.auth.signals import user_logged_out
from django.db import transaction
from django.db.models.signals import m2m_changed, post_delete, post_save, pre_delete, pre_save

from .revocation import (
    end_user_sessions,
    revoke_user_sockets,
    session_credential,
    token_credential,
)

log = logging.getLogger("petcam.auth")


def access_changed(user_id: int, reason: str, *, credential: str | None = None,
                   close_all: bool = False) -> None:
    """Once the current transaction commits: tell the user's sockets, and end the live
    video they may no longer watch (`credential`: what that login opened; `close_all`:
    everything)."""
    transaction.on_commit(partial(_apply, user_id, reason, credential, close_all))


def _apply(user_id: int, reason: str, credential: str | None, close_all: bool) -> None:
    try:
        _end_access(user_id, reason, credential, close_all)
    except Exception:  # runs at commit: a failure here must not turn the change into a 500
        log.exception("could not end the live access of user %s (%s)", user_id, reason)


def _end_access(user_id: int, reason: str, credential: str | None, close_all: bool) -> None:
    from petcam_site.permissions import visible_camera_slugs

    from .models import Camera

    log.info("access of user %s changed (%s): checking their open sockets and live video",
             user_id, reason)
    revoke_user_sockets(user_id, reason, credential=credential, close_all=close_all)
    cameras = Camera.objects.enabled_slugs()
    if credential is None and not close_all:
        user = get_user_model().objects.filter(pk=user_id).first()
        if user is not None:
            still = set(visible_camera_slugs(user))
            cameras = [slug for slug in cameras if slug not in still]
    end_user_sessions(user_id, cameras, reason, credential=credential)


# --- receivers ------------------------------------------------------------------------------

_PASSWORD_CHANGED = "_petcam_password_changed"


def user_saving(sender, instance, update_fields=None, **kwargs) -> None:
    """Notes whether the password changes (post_save cannot tell any more)."""
    if instance.pk is None or (update_fields and set(update_fields) <= {"last_login"}):
        return
    before = sender.objects.filter(pk=instance.pk).values_list("password", flat=True).first()
    setattr(instance, _PASSWORD_CHANGED, before is not None and before != instance.password)


def user_saved(sender, instance, created: bool, update_fields=None, **kwargs) -> None:
    # A login only stamps last_login: nothing changed about the user's rights.
    if created or (update_fields and set(update_fields) <= {"last_login"}):
        return
    if getattr(instance, _PASSWORD_CHANGED, False):
        setattr(instance, _PASSWORD_CHANGED, False)
        access_changed(instance.pk, "password changed", close_all=True)
    else:
        access_changed(instance.pk, "account changed")


def user_deleted(sender, instance, **kwargs) -> None:
    access_changed(instance.pk, "account deleted", close_all=True)


def memberships_changed(sender, instance, action: str, reverse: bool, pk_set, **kwargs) -> None:
    """A user's groups or own permissions changed (from the user's side or the group's)."""
    if action not in ("post_add", "post_remove", "pre_clear"):
        return
    if not reverse:  # user.groups.add(...): instance is the user
        access_changed(instance.pk, "roles changed")
        return
    # group.user_set.remove(...): pk_set holds user ids; a clear has none, so ask first
    user_ids = pk_set if action != "pre_clear" else list(
        instance.user_set.values_list("pk", flat=True))
    for user_id in user_ids or ():
        access_changed(user_id, "roles changed")


def role_permissions_changed(sender, instance, action: str, reverse: bool, pk_set,
                             **kwargs) -> None:
    """A group's permissions changed: every member's rights did."""
    if action not in ("post_add", "post_remove", "pre_clear"):
        return
    groups = [instance] if not reverse else list(
        Group.objects.filter(permissions=instance) if pk_set is None
        else Group.objects.filter(pk__in=pk_set))
    user_model = get_user_model()
    for user_id in user_model.objects.filter(groups__in=groups).values_list("pk", flat=True) \
            .distinct():
        access_changed(user_id, "role permissions changed")


def group_deleting(sender, instance, **kwargs) -> None:
    for user_id in instance.user_set.values_list("pk", flat=True):
        access_changed(user_id, f"role {instance.name!r} deleted")


def camera_access_changed(sender, instance, **kwargs) -> None:
    access_changed(instance.user_id, "camera access changed")


def token_deleted(sender, instance, **kwargs) -> None:
    """An API token was revoked (or regenerated): what it opened ends. Connect it to any
    token model whose rows have `user_id`."""
    access_changed(instance.user_id, "API token revoked", credential=token_credential(instance))


def logged_out(sender, request, user, **kwargs) -> None:
    key = getattr(getattr(request, "session", None), "session_key", None)
    if user is not None and key:
        access_changed(user.pk, "logged out", credential=session_credential(key))


def connect() -> None:
    """Hook the receivers up (StreamingConfig.ready())."""
    from accounts.models import ApiToken

    from .models import CameraAccess

    user_model = get_user_model()
    uid = "petcam.revocation."
    pre_save.connect(user_saving, sender=user_model, dispatch_uid=uid + "user_saving")
    post_save.connect(user_saved, sender=user_model, dispatch_uid=uid + "user_saved")
    post_delete.connect(user_deleted, sender=user_model, dispatch_uid=uid + "user_deleted")
    m2m_changed.connect(memberships_changed, sender=user_model.groups.through,
                        dispatch_uid=uid + "groups")
    m2m_changed.connect(memberships_changed, sender=user_model.user_permissions.through,
                        dispatch_uid=uid + "user_permissions")
    m2m_changed.connect(role_permissions_changed, sender=Group.permissions.through,
                        dispatch_uid=uid + "group_permissions")
    pre_delete.connect(group_deleting, sender=Group, dispatch_uid=uid + "group_deleting")
    post_save.connect(camera_access_changed, sender=CameraAccess,
                      dispatch_uid=uid + "camera_access_saved")
    post_delete.connect(camera_access_changed, sender=CameraAccess,
                        dispatch_uid=uid + "camera_access_deleted")
    post_delete.connect(token_deleted, sender=ApiToken, dispatch_uid=uid + "token_deleted")
    user_logged_out.connect(logged_out, dispatch_uid=uid + "logged_out")
