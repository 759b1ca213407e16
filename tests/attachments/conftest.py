"""The attachment tests' fixtures: a local SMTP server, an API key that may upload, and storage in a
temporary directory."""

from __future__ import annotations

import uuid

import pytest
from django.test import override_settings

from apps.delivery.models import ApiKey, ApiScope
from apps.harness import protocol_servers as servers
from tests.attachments.support import BASE_STORAGES


@pytest.fixture
def smtp():
    from aiosmtpd.controller import Controller

    from apps.providers import registry

    handler = servers.SmtpHandler()
    controller = Controller(handler, hostname="127.0.0.1", port=servers.free_port())
    controller.start()
    registry.reset()
    handler.port = controller.port
    with override_settings(EMAIL_BACKEND="django.core.mail.backends.smtp.EmailBackend", EMAIL_HOST="127.0.0.1",
                           EMAIL_PORT=controller.port, DEFAULT_FROM_EMAIL="club@club.example"):
        yield handler
    registry.reset()
    controller.stop()


@pytest.fixture
def key(transactional_db):
    from apps.preferences.defaults import ensure_default_categories

    ensure_default_categories()
    token = f"attach-{uuid.uuid4().hex}"
    api_key = ApiKey.objects.create(name=f"attachments-{token[-8:]}", token_sha256=ApiKey.hash(token),
                                    scopes=[ApiScope.SEND, ApiScope.MANAGE_ATTACHMENTS])
    return {"HTTP_AUTHORIZATION": f"Bearer {token}", "key": api_key}


@pytest.fixture
def filesystem(tmp_path):
    storages = {**BASE_STORAGES, "attachments": {"BACKEND": "django.core.files.storage.FileSystemStorage",
                                                   "OPTIONS": {"location": str(tmp_path / "attachments")}}}
    with override_settings(ATTACHMENT_STORAGE="filesystem", STORAGES=storages):
        yield tmp_path / "attachments"
