"""Seed the `default` camera: blank segments and limit, so it follows PETCAM_* settings."""

from django.db import migrations


def seed(apps, schema_editor):
    Camera = apps.get_model("streaming", "Camera")
    if not Camera.objects.exists():
        Camera.objects.create(slug="default", name="Camera")


class Migration(migrations.Migration):
    dependencies = [("streaming", "0001_camera")]
    operations = [migrations.RunPython(seed, migrations.RunPython.noop)]
