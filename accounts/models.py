"""API tokens, stored hashed (django-rest-knox's model plus a name)."""

from __future__ import annotations

from django.db import models
from knox.models import AbstractAuthToken

NAME_MAX_LENGTH = 64


class ApiToken(AbstractAuthToken):
    """One API token of a user: knox keeps only the SHA-512 digest of the key and its first
    15 characters (`token_key`, to find the row); the key itself is shown once, when it is
    made. A user holds several, each with a name ("Pixel 8", "Prometheus") and an expiry."""

    name = models.CharField(max_length=NAME_MAX_LENGTH, blank=True, default="")

    class Meta:
        verbose_name = "API token"
        ordering = ("-created",)

    def __str__(self) -> str:
        return f"{self.name or 'token'} of {self.user} ({self.prefix}…)"

    @property
    def prefix(self) -> str:
        """What lists show of the key: enough to tell tokens apart, useless to a thief."""
        return self.token_key[:PREFIX_SHOWN]


PREFIX_SHOWN = 6


class Preferences(models.Model):
    """A user's language and time zone, chosen on the account page. Kept per user (not in a
    cookie) so they follow the owner to every device; empty means "as the browser says"."""

    user = models.OneToOneField("auth.User", on_delete=models.CASCADE,
                                related_name="petcam_preferences")
    language = models.CharField(max_length=8, blank=True, default="")
    time_zone = models.CharField(max_length=64, blank=True, default="")

    class Meta:
        verbose_name_plural = "preferences"

    def __str__(self) -> str:
        return f"preferences of {self.user}"
