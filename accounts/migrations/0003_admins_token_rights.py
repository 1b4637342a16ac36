"""The admins group sees and revokes API tokens (knox's, hashed) instead of DRF's.

DRF's token admin showed every key in clear to anyone with its view permission; the
hashed tokens have nothing to show, and nobody but a token's owner creates one (an
admin-made token for someone else would let the admin act as them).
"""

from django.contrib.auth.management import create_permissions
from django.db import migrations

TOKEN_RIGHTS = [("accounts", "apitoken", "view_apitoken"),
                ("accounts", "apitoken", "delete_apitoken")]
OLD_TOKEN_APPS = ("authtoken",)


def retarget_admins(Group, Permission) -> None:  # noqa: N803 - model classes
    """Idempotent; tests/support/roles.py calls it after a flush, like 0004's."""
    group = Group.objects.filter(name="admins").first()
    if group is None:
        return
    group.permissions.remove(*group.permissions.filter(
        content_type__app_label__in=OLD_TOKEN_APPS))
    group.permissions.add(*(Permission.objects.get(content_type__app_label=app,
                                                   content_type__model=model,
                                                   codename=codename)
                            for app, model, codename in TOKEN_RIGHTS))


def forward(apps, schema_editor):
    config = apps.get_app_config("accounts")
    config.models_module = True  # permissions are normally made after all migrations
    create_permissions(config, apps=apps, verbosity=0)
    config.models_module = None
    retarget_admins(apps.get_model("auth", "Group"), apps.get_model("auth", "Permission"))


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0002_hash_old_tokens"),
        ("streaming", "0004_seed_roles"),
    ]
    operations = [migrations.RunPython(forward, migrations.RunPython.noop)]
