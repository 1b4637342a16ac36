"""Recordings in the Django admin: thumbnails, filters, and deletes that remove the files."""

from __future__ import annotations

from django.contrib import admin, messages
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html

from .models import Recording, RecordingSchedule
from .retention import delete_recording
from .titles import recording_title


@admin.register(Recording)
class RecordingAdmin(admin.ModelAdmin):
    # Fits 1366 px beside the filters (petcam/admin_theme.css): a small thumbnail, the
    # human title (the file name is on the recording's page), short dates and figures.
    list_display = ("preview", "title", "camera", "status", "trigger", "started",
                    "duration_s", "size", "keep")
    list_display_links = ("title",)

    def get_list_display(self, request):
        # One camera (the usual home): its name in every row says nothing.
        if Recording.objects.order_by().values("camera").distinct()[:2].count() < 2:
            return tuple(c for c in self.list_display if c != "camera")
        return self.list_display
    list_filter = ("camera", "status", "trigger", "keep")
    search_fields = ("name", "camera")
    date_hierarchy = "started_at"
    ordering = ("-started_at", "-id")
    fields = ("player", "name", "keep", "camera", "status", "failure_reason", "trigger",
              "format", "file", "thumbnail", "started_at", "ended_at", "duration",
              "frame_count", "size_bytes",
              "width", "height", "profile", "dropped_frames", "gaps", "detection_classes",
              "camera_switches", "previous_segment", "created_by", "created_at", "updated_at")
    # Only the label and `keep` are the user's; file paths are always the server's.
    readonly_fields = tuple(f for f in fields if f not in ("name", "keep"))

    class Media:
        css = {"all": ("recordings/admin.css",)}  # no style="": the CSP refuses inline styles

    @admin.display(description="recording")
    def player(self, obj):
        if obj.format != Recording.Format.MP4:
            return format_html('<a href="{}">download (.h264: play it with ffplay or VLC)</a>',
                               reverse("recording-download", args=[obj.pk]))
        return format_html('<video src="{}" controls preload="metadata" width="480" '
                           'poster="{}" class="recording-media"></video>',
                           reverse("recording-download", args=[obj.pk]),
                           reverse("recording-thumbnail", args=[obj.pk]))

    def has_add_permission(self, request):
        return False  # recordings come from the recorder

    def has_delete_permission(self, request, obj=None):
        if obj is not None and obj.status == Recording.Status.RECORDING:
            return False  # still being written: stop it first
        return super().has_delete_permission(request, obj)

    @admin.display(description="")
    def preview(self, obj):
        if obj.status == Recording.Status.RECORDING:
            return "recording…"  # no keyframe picture until it ends
        return format_html('<img src="{}" alt="" width="64" loading="lazy" '
                           'class="recording-media recording-thumb">',
                           reverse("recording-thumbnail", args=[obj.pk]))

    @admin.display(description="title", ordering="name")
    def title(self, obj):
        return recording_title(obj)

    @admin.display(description="started", ordering="started_at")
    def started(self, obj):
        return timezone.localtime(obj.started_at).strftime("%d %b %Y %H:%M")

    @admin.display(description="length", ordering="duration")
    def duration_s(self, obj):
        s = round(obj.duration)
        return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}" if s >= 3600 \
            else f"{s // 60}:{s % 60:02d}"

    @admin.display(description="size", ordering="size_bytes")
    def size(self, obj):
        n = float(obj.size_bytes)
        for unit in ("B", "KB", "MB", "GB"):
            if n < 1024 or unit == "GB":
                return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
            n /= 1024
        return ""

    def delete_model(self, request, obj):
        if obj.status == Recording.Status.RECORDING:
            self.message_user(request, f"{obj} is still recording: stop it before deleting.",
                              messages.ERROR)
            return
        delete_recording(obj)

    def delete_queryset(self, request, queryset):
        skipped = 0
        for obj in queryset:
            if obj.status == Recording.Status.RECORDING:
                skipped += 1
                continue
            delete_recording(obj)
        if skipped:
            self.message_user(request, f"{skipped} recording(s) still in progress were not "
                              "deleted: stop them first.", messages.WARNING)


@admin.register(RecordingSchedule)
class RecordingScheduleAdmin(admin.ModelAdmin):
    list_display = ("camera", "days", "start", "end", "timezone", "segment_minutes", "enabled")
    list_filter = ("camera", "enabled")
