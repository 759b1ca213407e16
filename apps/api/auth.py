"""API-key authentication for ninja operations: `auth=scoped(ApiScope.SEND)`.

The rules are apps/delivery/api_auth.py's (Bearer token, the endpoint's scope, the key's rate); this
class only plugs them into ninja and into the OpenAPI document (a bearer security scheme).
"""

from __future__ import annotations

from django.http import HttpRequest
from ninja.security import HttpBearer

from apps.delivery.api_auth import Refusal, authenticate, check_rate
from apps.delivery.models import ApiKey, ApiScope


class ScopedApiKey(HttpBearer):
    """Answers the ApiKey (ninja sets it as request.auth) or raises Refusal: 401, 403 naming the scope, 429."""

    def __init__(self, scope: ApiScope) -> None:
        super().__init__()
        self.scope = scope

    def __call__(self, request: HttpRequest) -> ApiKey:
        api_key = authenticate(request)
        if self.scope not in api_key.scopes:
            raise Refusal(403, f"this API key lacks the scope {self.scope.value!r}", scope=self.scope.value)
        check_rate(api_key)
        return api_key

    def authenticate(self, request: HttpRequest, token: str) -> ApiKey:  # pragma: no cover - __call__ does it
        return self(request)


def scoped(scope: ApiScope) -> ScopedApiKey:
    return ScopedApiKey(scope)
