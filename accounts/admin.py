"""Users, groups and API tokens in the admin, under accounts/rights.py's rules."""

from __future__ import annotations

from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import GroupAdmin, UserAdmin
from django.contrib.auth.models import Group
from rest_framework.authtoken.models import TokenProxy

from streaming.admin import CameraAccessInline

from . import rights
from .models import ApiToken
from .tokens import revoke_tokens

# DRF's token admin listed every key in clear; its table is empty since the keys were
# hashed into ApiToken (migrations/0002), and nothing may add to it again.
if admin.site.is_registered(TokenProxy):
    admin.site.unregister(TokenProxy)

User = get_user_model()
admin.site.unregister(User)
admin.site.unregister(Group)

# What a non-superuser may never change on their own user page.
OWN_RIGHTS = ("is_active", "is_staff", "is_superuser", "groups", "user_permissions")


class ManagedCameraAccessInline(CameraAccessInline):
    """Read-only on one's own page, and for an editor who is limited to some cameras
    (they would otherwise hand out cameras they cannot see)."""

    def _may_edit(self, request, obj) -> bool:
        editor = request.user
        if editor.is_superuser:
            return True
        return obj is not None and obj.pk != editor.pk and rights.camera_scope(editor) is None

    def has_add_permission(self, request, obj=None) -> bool:
        return super().has_add_permission(request, obj) and self._may_edit(request, obj)

    def has_change_permission(self, request, obj=None) -> bool:
        return super().has_change_permission(request, obj) and self._may_edit(request, obj)

    def has_delete_permission(self, request, obj=None) -> bool:
        return super().has_delete_permission(request, obj) and self._may_edit(request, obj)


@admin.register(User)
class PetcamUserAdmin(UserAdmin):
    """Django's user admin plus per-camera access; roles are the groups (viewers,
    operators, admins). Non-superusers manage only the users below them."""

    inlines = [*UserAdmin.inlines, ManagedCameraAccessInline]

    def get_queryset(self, request):
        users = super().get_queryset(request)
        return users if request.user.is_superuser else users.filter(is_superuser=False)

    def get_list_filter(self, request):
        filters = super().get_list_filter(request)
        return filters if request.user.is_superuser else [f for f in filters
                                                          if f != "is_superuser"]

    def get_fieldsets(self, request, obj=None):
        fieldsets = super().get_fieldsets(request, obj)
        if request.user.is_superuser:
            return fieldsets
        return [(name, {**opts, "fields": tuple(f for f in opts["fields"] if f != "is_superuser")})
                for name, opts in fieldsets]

    def get_readonly_fields(self, request, obj=None):
        readonly = tuple(super().get_readonly_fields(request, obj))
        if obj is not None and obj.pk == request.user.pk and not request.user.is_superuser:
            return readonly + OWN_RIGHTS
        return readonly

    def formfield_for_manytomany(self, db_field, request=None, **kwargs):
        # Only what the editor holds can be chosen; anything else is "not a valid choice".
        if db_field.name == "groups":
            kwargs["queryset"] = rights.grantable_groups(request.user)
        elif db_field.name == "user_permissions":
            kwargs["queryset"] = rights.grantable_permissions(request.user).select_related(
                "content_type")
        return super().formfield_for_manytomany(db_field, request=request, **kwargs)

    def has_view_permission(self, request, obj=None) -> bool:
        if obj is not None and obj.is_superuser and not request.user.is_superuser:
            return False
        return super().has_view_permission(request, obj)

    def has_change_permission(self, request, obj=None) -> bool:
        if not super().has_change_permission(request, obj):
            return False
        # one's own page: name, e-mail and password only (OWN_RIGHTS are read-only)
        return obj is None or obj.pk == request.user.pk or rights.may_manage_user(
            request.user, obj)

    def has_delete_permission(self, request, obj=None) -> bool:
        if not super().has_delete_permission(request, obj):
            return False
        return obj is None or rights.may_manage_user(request.user, obj)


@admin.register(Group)
class PetcamGroupAdmin(GroupAdmin):
    """Groups (roles): a non-superuser changes only groups they are not in and grants
    only permissions they hold."""

    def formfield_for_manytomany(self, db_field, request=None, **kwargs):
        if db_field.name == "permissions":
            kwargs["queryset"] = rights.grantable_permissions(request.user)
        return super().formfield_for_manytomany(db_field, request=request, **kwargs)

    def has_change_permission(self, request, obj=None) -> bool:
        return super().has_change_permission(request, obj) and (
            obj is None or rights.may_manage_group(request.user, obj))

    def has_delete_permission(self, request, obj=None) -> bool:
        return super().has_delete_permission(request, obj) and (
            obj is None or rights.may_manage_group(request.user, obj))


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    """API tokens: who holds which, until when; revoke (delete) them. No key is stored,
    so none is shown; nobody makes a token for someone else (that would let them act as
    that person): people make their own on the account page."""

    list_display = ("name", "user", "prefix", "created", "expiry")
    list_filter = ("expiry",)
    search_fields = ("name", "user__username")
    fields = ("name", "user", "prefix", "created", "expiry")
    readonly_fields = fields
    ordering = ("-created",)

    @admin.display(description="token")
    def prefix(self, token: ApiToken) -> str:
        return f"{token.prefix}…"

    def get_queryset(self, request):
        tokens = super().get_queryset(request).select_related("user")
        return tokens if request.user.is_superuser else tokens.filter(user__is_superuser=False)

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        if not super().has_delete_permission(request, obj):
            return False
        return obj is None or obj.user_id == request.user.pk or rights.may_manage_user(
            request.user, obj.user)

    def delete_model(self, request, obj) -> None:
        revoke_tokens(ApiToken.objects.filter(pk=obj.pk), by=f"admin {request.user}")

    def delete_queryset(self, request, queryset) -> None:
        revoke_tokens(queryset, by=f"admin {request.user}")
