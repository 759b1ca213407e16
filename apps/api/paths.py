"""Path segments the API's URLs take."""

from __future__ import annotations

from django.urls import register_converter


class ExternalIdConverter:
    """Any path segment but one holding NUL, which PostgreSQL text cannot hold: that is a 404, not a 500."""

    regex = "[^/\x00]+"

    def to_python(self, value: str) -> str:
        return value

    def to_url(self, value: str) -> str:
        return value


register_converter(ExternalIdConverter, "external_id")
EXTERNAL_ID = "{external_id:external_id}"  # in a route: f"/recipients/{EXTERNAL_ID}"
