from django.contrib import admin

from streaming.media.sources import mask_credentials

from .models import Camera, CameraAccess


@admin.register(Camera)
class CameraAdmin(admin.ModelAdmin):
    list_display = ("slug", "name", "enabled", "source_kind", "stream_segment_name",
                    "viewer_limit", "position")
    list_editable = ("enabled", "position")
    search_fields = ("slug", "name")
    prepopulated_fields = {"slug": ("name",)}

    @admin.display(description="source")
    def source_kind(self, camera) -> str:
        # RTSP credentials stay in the edit form, never in lists.
        return mask_credentials(camera.source) if camera.source else "shared memory"


class CameraAccessInline(admin.TabularInline):
    """On the user page: the cameras the user may see (petcam_site/permissions.py)."""

    model = CameraAccess
    extra = 0
    verbose_name = "camera this user may see"
    verbose_name_plural = "Camera access: listed cameras only (none listed: all cameras)"


# The user page that shows this inline is accounts/admin.py's (with the admin's rights).
