"""POST /api/auth/token/: username + password -> a new API token (documented)."""

from __future__ import annotations

from drf_spectacular.utils import (
    OpenApiResponse,
    extend_schema,
    extend_schema_view,
    inline_serializer,
)
from rest_framework import serializers

from petcam_site.account import AuthTokenSerializer, TokenEndpoint
from petcam_site.api_schema import ErrorSerializer, errors

TOKEN_REPLY = inline_serializer("Token", {
    "token": serializers.CharField(help_text="The key: shown this once, never again."),
    "name": serializers.CharField(),
    "expiry": serializers.DateTimeField(allow_null=True,
                                        help_text="When the token stops working (null: never)."),
})


@extend_schema_view(post=extend_schema(
    operation_id="auth_token", auth=[], request=AuthTokenSerializer,
    description=("username + password (JSON or form) and an optional token name -> a new "
                 "token for `Authorization: Bearer`. Each call makes another token; the key "
                 "is stored hashed and shown only in this answer."),
    responses={200: OpenApiResponse(TOKEN_REPLY),
               400: OpenApiResponse(ErrorSerializer, description="Wrong username or password."),
               403: OpenApiResponse(ErrorSerializer, description=(
                   "too_many_tokens: the user holds the most tokens allowed.")),
               429: OpenApiResponse(ErrorSerializer, description=(
                   "too_many_attempts: locked out after failed logins (Retry-After: seconds).")),
               503: OpenApiResponse(ErrorSerializer, description="Database unavailable.")}),
    delete=extend_schema(operation_id="auth_token_revoke", request=None,
                         description=("Revoke the token this call is made with (with a "
                                      "session login: all of the user's tokens)."),
                         responses={204: OpenApiResponse(description="Revoked."), **errors()}))
class ObtainToken(TokenEndpoint):
    """petcam_site/account.py's endpoint; a subclass only so the OpenAPI document
    describes it."""
