"""Who may change whom in the admin: nobody but a superuser raises anyone's rights.

A member of the `admins` group (or any staff user who is not a superuser) manages the
users below them: users whose permissions are all among the editor's own and whose
cameras are among the editor's. They never see or touch a superuser, never change
their own groups, permissions, staff or active flag or camera access, and grant only
groups and permissions they hold themselves. Superusers are not limited.
"""

from __future__ import annotations

from django.contrib.auth.models import Group, Permission
from django.db.models import Q, QuerySet


def own_permissions(user) -> QuerySet[Permission]:
    """The permissions a user holds directly or through a group (as ModelBackend counts)."""
    if not user.is_active:
        return Permission.objects.none()
    return Permission.objects.filter(Q(user=user) | Q(group__user=user)).distinct()


def grantable_permissions(editor) -> QuerySet[Permission]:
    if editor.is_superuser:
        return Permission.objects.all()
    return Permission.objects.filter(pk__in=own_permissions(editor).values("pk"))


def grantable_groups(editor) -> QuerySet[Group]:
    """Groups whose every permission the editor holds."""
    if editor.is_superuser:
        return Group.objects.all()
    beyond = Permission.objects.exclude(pk__in=own_permissions(editor).values("pk"))
    return Group.objects.exclude(permissions__in=beyond)


def camera_scope(user) -> frozenset[int] | None:
    """Camera ids a user is limited to; None: every camera."""
    if user.is_superuser:
        return None
    from streaming.models import CameraAccess

    ids = frozenset(CameraAccess.objects.filter(user=user).values_list("camera_id", flat=True))
    return ids or None


def within_cameras(editor, target) -> bool:
    mine, theirs = camera_scope(editor), camera_scope(target)
    return mine is None or (theirs is not None and theirs <= mine)


def may_manage_user(editor, target) -> bool:
    """May `editor` change or delete `target` (another user)?"""
    if editor.is_superuser:
        return True
    if target.is_superuser or target.pk == editor.pk:
        return False
    beyond = own_permissions(target).exclude(pk__in=own_permissions(editor).values("pk"))
    return not beyond.exists() and within_cameras(editor, target)


def may_manage_group(editor, group: Group) -> bool:
    """May `editor` change or delete `group`? Never one of their own groups (that would
    change their own rights), nor one holding a permission they do not have."""
    if editor.is_superuser:
        return True
    if editor.groups.filter(pk=group.pk).exists():
        return False
    return grantable_groups(editor).filter(pk=group.pk).exists()
