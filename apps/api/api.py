"""The public HTTP API: one NinjaAPI, served at /api/ (OpenAPI 3.1 at /api/openapi.json, docs at /api/docs).

Each app keeps its operations in a ninja Router of its own and is mounted here, one line each:

    # apps/callbacks/api_routes.py
    from ninja import Router
    from apps.api.auth import scoped
    from apps.api.errors import ApiError              # raise ApiError(404, "no endpoint 7", "id")
    from apps.api.schemas import AUTH_ERRORS, BODY_ERRORS
    router = Router(tags=["callbacks"])

    @router.post("/", auth=scoped(ApiScope.MANAGE_CALLBACKS), response={201: EndpointOut, **AUTH_ERRORS, **BODY_ERRORS})
    def create_endpoint(request, payload: EndpointIn): ...   # request.auth is the ApiKey

    # here:
    api.add_router("/callbacks/", "apps.callbacks.api_routes.router")

Bodies are parsed by apps/api/body.py (413, 415, and the shared JSON checks); every error handler is in
apps/api/errors.py and answers {"error": ..., "field": ...}. The document gets 400, 401, 413, 415 and 503
wherever an operation can meet them (apps/api/openapi.py); declare the others an operation answers (403,
404, 409, 422, 429: AUTH_ERRORS has 401/403/429) in its `response=`, or schemathesis
(tests/api/test_api_schema.py) fails it. A new operation needs its row in the README's table
(tests/api/test_api_docs.py).
"""

from __future__ import annotations

from . import errors
from .body import CheckedJsonParser
from .openapi import DocumentedNinjaAPI

api = DocumentedNinjaAPI(
    title="Notification platform API",
    version="1",
    description="Send notifications, read their status, manage recipients and their devices. "
                "Authenticate with `Authorization: Bearer <API key>`; each operation needs one scope of the key. "
                'Every refusal is JSON: `{"error": "...", "field": "..."}`.',
    urls_namespace="api",
    parser=CheckedJsonParser(),
    openapi_url="/openapi.json",
    docs_url="/docs",
)
errors.install(api)
api.add_router("/", "apps.api.notifications.router")
api.add_router("/", "apps.api.recipients.router")
api.add_router("/", "apps.api.devices.router")
api.add_router("/", "apps.api.me.router")
api.add_router("/callbacks/", "apps.callbacks.api_routes.router")
api.add_router("/", "apps.api.recipient_import.router")
api.add_router("/", "apps.api.suppressions.router")
api.add_router("/", "apps.attachments.api_routes.router")
