"""The API's OpenAPI document, completed with the refusals every operation can answer, so that no router
has to list them and the document never promises less than the server does (schemathesis checks it):
400 for an operation with parameters or a body (validation names the field), 413 and 415 with a body,
401 behind any credential."""

from __future__ import annotations

from typing import Any

from ninja import NinjaAPI

from .schemas import ErrorOut

COMMON = {400: "Invalid input: the field is named", 401: "Missing or invalid token",
          413: "Body over the size limit", 415: "Content-Type is not application/json"}


class DocumentedNinjaAPI(NinjaAPI):
    def get_openapi_schema(self, *, path_prefix: str | None = None, path_params: dict | None = None) -> Any:  # noqa: ANN401
        document = super().get_openapi_schema(path_prefix=path_prefix, path_params=path_params)
        schemas = document.setdefault("components", {}).setdefault("schemas", {})
        schemas.setdefault("ErrorOut", ErrorOut.model_json_schema(ref_template="#/components/schemas/{model}"))
        error = {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorOut"}}}}
        for operations in document.get("paths", {}).values():
            for operation in operations.values():
                responses = operation.setdefault("responses", {})
                needed = set()
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
