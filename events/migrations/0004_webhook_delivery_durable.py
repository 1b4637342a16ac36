"""Webhook deliveries kept with their body and next attempt time (resumed after a worker
restart), and a delivery id per delivery (the X-Petcam-Delivery header)."""

import uuid

from django.db import migrations, models


def fill_ids_and_close_abandoned(apps, schema_editor):
    Delivery = apps.get_model("events", "WebhookDelivery")
    for row in Delivery.objects.all().only("pk"):
        Delivery.objects.filter(pk=row.pk).update(delivery_id=uuid.uuid4())
    # Earlier deliveries still retrying were lost with the worker that ran them (no body
    # was kept to resume them): say so rather than leave them pending for ever.
    Delivery.objects.filter(status__in=["pending", "retrying"]).update(
        status="failed", error="abandoned when the worker stopped (before deliveries "
        "were resumable)")


class Migration(migrations.Migration):

    dependencies = [
        ("events", "0003_push_subscription"),
    ]

    operations = [
        migrations.AddField(
            model_name="webhookdelivery",
            name="delivery_id",
            field=models.UUIDField(null=True, editable=False),
        ),
        migrations.RunPython(fill_ids_and_close_abandoned, migrations.RunPython.noop),
        migrations.AlterField(
            model_name="webhookdelivery",
            name="delivery_id",
            field=models.UUIDField(default=uuid.uuid4, editable=False, unique=True,
                                   help_text="X-Petcam-Delivery header: the same on every "
                                   "attempt, so a receiver can drop a repeat"),
        ),
        migrations.AddField(
            model_name="webhookdelivery",
            name="body",
            field=models.TextField(blank=True, help_text="the JSON sent on every attempt"),
        ),
        migrations.AddField(
            model_name="webhookdelivery",
            name="next_attempt_at",
            field=models.DateTimeField(blank=True, null=True,
                                       help_text="empty once delivered or failed"),
        ),
        migrations.AddIndex(
            model_name="webhookdelivery",
            index=models.Index(fields=["status", "next_attempt_at"], name="webhook_due"),
        ),
    ]
