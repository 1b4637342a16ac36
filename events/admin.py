"""Event rules and events in the Django admin (deleting an event removes its snapshot)."""

from django.contrib import admin

from .models import Event, EventRule, PushSubscription, WebhookDelivery
from .store import delete_event


@admin.register(EventRule)
class EventRuleAdmin(admin.ModelAdmin):
    list_display = ("camera", "name", "enabled", "classes", "min_confidence", "min_seconds",
                    "cooldown_seconds", "timezone")
    list_filter = ("camera", "enabled")
    readonly_fields = ("created_by", "created_at", "updated_at")
    exclude = ("webhook_secret",)  # write it through the API or the rule page


@admin.register(Event)
class EventAdmin(admin.ModelAdmin):
    list_display = ("started_at", "camera", "class_name", "peak_confidence", "ended_at",
                    "recording")
    list_filter = ("camera", "class_name")
    date_hierarchy = "started_at"
    readonly_fields = [f.name for f in Event._meta.fields]

    def has_add_permission(self, request) -> bool:
        return False  # events come from the rules

    def delete_model(self, request, obj) -> None:
        delete_event(obj)

    def delete_queryset(self, request, queryset) -> None:
        for event in queryset:
            delete_event(event)


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(admin.ModelAdmin):
    """The delivery log: one row per event start/end sent, with its attempts; pending and
    retrying ones show when the next attempt is due (a worker resumes them after a
    restart). Search by the X-Petcam-Delivery id a receiver logged."""

    list_display = ("created_at", "event", "rule", "kind", "status", "attempts",
                    "next_attempt_at", "response_status", "url")
    list_filter = ("status", "kind")
    search_fields = ("delivery_id",)
    readonly_fields = [f.name for f in WebhookDelivery._meta.fields]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


@admin.register(PushSubscription)
class PushSubscriptionAdmin(admin.ModelAdmin):
    """Browsers that get phone notifications; deleting one stops them (the user can
    subscribe again from the account page)."""

    list_display = ("user", "label", "cameras", "classes", "quiet_start", "quiet_end",
                    "created_at")
    list_filter = ("user",)
    readonly_fields = ("user", "endpoint", "p256dh", "auth", "created_at")

    def has_add_permission(self, request) -> bool:
        return False  # only a browser can make one
