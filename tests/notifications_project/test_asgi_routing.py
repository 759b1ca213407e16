"""notifications_project/asgi.py: async views (the inbox stream) go to Django's ASGI handler, every other
HTTP request to the WSGI handler in the fixed thread pool (a2wsgi); lifespan and the rest to the ASGI one."""

from __future__ import annotations

import asyncio

import pytest

from notifications_project import asgi


@pytest.mark.parametrize(("path", "root_path", "handler"), [
    ("/api/inbox/stream", "", "async_views"),
    ("/prefix/api/inbox/stream", "/prefix", "async_views"),
    ("/api/notifications", "", "sync_views"),
    ("/healthz", "", "sync_views"),
    ("/admin/login/", "", "sync_views"),
    ("/static/admin/css/base.css", "", "sync_views"),  # no view: whitenoise answers it in the WSGI chain
    ("/no/such/page", "", "sync_views"),
])
def test_each_request_goes_to_the_handler_of_its_view(monkeypatch, path, root_path, handler):
    called = []

    def recorder(name: str):  # noqa: ANN202
        async def app(scope, receive, send) -> None:  # noqa: ANN001
            called.append(name)
        return app

    monkeypatch.setattr(asgi, "sync_views", recorder("sync_views"))
    monkeypatch.setattr(asgi, "async_views", recorder("async_views"))
    scope = {"type": "http", "path": path, "root_path": root_path, "method": "GET"}
    asyncio.run(asgi.application(scope, None, None))
    assert called == [handler]


def test_lifespan_goes_to_the_asgi_handler(monkeypatch):
    called = []

    async def app(scope, receive, send) -> None:  # noqa: ANN001
        called.append(scope["type"])

    monkeypatch.setattr(asgi, "async_views", app)
    asyncio.run(asgi.application({"type": "lifespan"}, None, None))
    assert called == ["lifespan"]


def test_the_sync_views_thread_pool_has_web_threads_threads(settings):
    assert asgi.sync_views.executor._max_workers == settings.WEB_THREADS
