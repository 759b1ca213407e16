"""The API's OpenAPI document, completed with the refusals every operation can answer, so that no router
has to list them and the document never promises less than the server does (schemathesis checks it):
400 for an operation with parameters or a body (validation names the field), 413 and 415 with a body,
401 behind any credential, 503 everywhere (PostgreSQL or Redis away). Each operation's security
requirement names the API-key scope it needs (OpenAPI 3.1 lets a non-OAuth scheme list roles), which the
README's table is checked against."""

from __future__ import annotations

from typing import Any

from ninja import NinjaAPI
from ninja.openapi.schema import OpenAPISchema

from .schemas import ErrorOut

COMMON = {400: "Invalid input: the field is named", 401: "Missing or invalid token",
          413: "Body over the size limit", 415: "Content-Type is not application/json",
          503: "PostgreSQL or Redis unavailable for a moment: retry (with the same Idempotency-Key)"}


class ScopedOpenAPISchema(OpenAPISchema):
    def operation_security(self, operation: Any) -> list[dict] | None:  # noqa: ANN401
        security = super().operation_security(operation)
        for auth, requirement in zip(operation.auth_callbacks, security or [], strict=False):
            scope = getattr(auth, "scope", None)
            if scope is not None:
                requirement[auth.__class__.__name__] = [str(scope.value)]
        return security


class DocumentedNinjaAPI(NinjaAPI):
    def get_openapi_schema(self, *, path_prefix: str | None = None, path_params: dict | None = None) -> Any:  # noqa: ANN401
        if path_prefix is None:
            path_prefix = self.get_root_path(path_params or {})
        cache = self.__dict__.setdefault("_documents", {})
        if path_prefix not in cache:  # the operations are fixed once the routers are mounted; building takes ~0.5 s
            cache[path_prefix] = self._build(path_prefix)
        return cache[path_prefix]

    def _build(self, path_prefix: str) -> Any:  # noqa: ANN401
        document = ScopedOpenAPISchema(self, path_prefix)
        schemas = document.setdefault("components", {}).setdefault("schemas", {})
        schemas.setdefault("ErrorOut", ErrorOut.model_json_schema(ref_template="#/components/schemas/{model}"))
        error = {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorOut"}}}}
        for operations in document.get("paths", {}).values():
            for operation in operations.values():
                responses = operation.setdefault("responses", {})
                needed = {503}
                if operation.get("parameters") or operation.get("requestBody"):
                    needed.add(400)
                if operation.get("requestBody"):
                    needed |= {413, 415}
                if operation.get("security"):
                    needed.add(401)
                for status in sorted(needed):
                    if status not in responses and str(status) not in responses:
                        responses[status] = {"description": COMMON[status], **error}
        return document
