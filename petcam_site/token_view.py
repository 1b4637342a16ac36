"""POST /api/auth/token/: username + password -> API token (DRF's view, documented)."""

from __future__ import annotations

from drf_spectacular.utils import (
    OpenApiResponse,
    extend_schema,
    extend_schema_view,
    inline_serializer,
)
from rest_framework import serializers

from petcam_site.account import TokenEndpoint
from petcam_site.api_schema import ErrorSerializer, errors


@extend_schema_view(post=extend_schema(
    operation_id="auth_token", auth=[],
    description="username + password (JSON or form) -> a token for `Authorization: Bearer`.",
    responses={200: OpenApiResponse(inline_serializer("Token", {"token": serializers.CharField()})),
               400: OpenApiResponse(ErrorSerializer, description="Wrong username or password."),
               429: OpenApiResponse(ErrorSerializer,
                                    description="Locked out after failed logins."),
               503: OpenApiResponse(ErrorSerializer, description="Database unavailable.")}),
    delete=extend_schema(operation_id="auth_token_revoke", request=None,
                         description="Revoke the caller's own token.",
                         responses={204: OpenApiResponse(description="Revoked."), **errors()}))
class ObtainToken(TokenEndpoint):
    """DRF's ObtainAuthToken, throttled, plus DELETE (petcam_site/account.py); a subclass
    only so the OpenAPI document describes it."""
