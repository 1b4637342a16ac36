"""Seed the three roles (groups) with their permissions; see petcam_site/permissions.py."""

from django.contrib.auth.management import create_permissions
from django.db import migrations

VIEWERS = [("streaming", "camera", "watch_camera"), ("recordings", "recording", "view_recording")]
OPERATORS = VIEWERS + [("streaming", "camera", "control_recording"),
                       ("recordings", "recording", "change_recording"),
                       ("recordings", "recording", "delete_recording")]
_CRUD = ("add", "change", "delete", "view")
ADMINS = OPERATORS + [
    (app, model, f"{action}_{model}")
    for app, model in [("auth", "user"), ("auth", "group"), ("streaming", "camera"),
                       ("streaming", "cameraaccess"), ("recordings", "recording"),
                       ("authtoken", "token"), ("authtoken", "tokenproxy")]
    for action in _CRUD
]
ROLES = {"viewers": VIEWERS, "operators": OPERATORS, "admins": ADMINS}


def assign_roles(Group, Permission) -> None:  # noqa: N803 - model classes
    """Create the groups and give them their permissions (idempotent). tests/support/roles.py calls
    it too: a transactional test's flush empties the groups table."""
    for name, wanted in ROLES.items():
        group, _ = Group.objects.get_or_create(name=name)
        perms = [Permission.objects.get(content_type__app_label=app,
                                        content_type__model=model, codename=codename)
                 for app, model, codename in dict.fromkeys(wanted)]
        group.permissions.add(*perms)


def seed_roles(apps, schema_editor):
    # Permissions are normally made after all migrations (post_migrate): make them now.
    for app_config in apps.get_app_configs():
        app_config.models_module = True
        create_permissions(app_config, apps=apps, verbosity=0)
        app_config.models_module = None
    assign_roles(apps.get_model("auth", "Group"), apps.get_model("auth", "Permission"))


def drop_roles(apps, schema_editor):
    apps.get_model("auth", "Group").objects.filter(name__in=ROLES).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("streaming", "0003_camera_access"),
        ("recordings", "0001_initial"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("authtoken", "0004_alter_tokenproxy_options"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]
    operations = [migrations.RunPython(seed_roles, drop_roles)]
