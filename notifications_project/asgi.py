"""The web tier's entry point: gunicorn with uvicorn workers (see README "Running the processes").

Async views (the inbox's server-sent-event stream) run in the event loop through Django's ASGI handler,
so an open stream holds no thread. Every other request goes to Django's WSGI handler in a fixed pool of
threads (a2wsgi): under the ASGI handler a sync view costs a thread hop for each hook of each middleware
and a new thread per request, 16 hops and 7 ms of CPU for /healthz against 1.9 ms here (README "Choices").
"""

import os

from a2wsgi import WSGIMiddleware
from asgiref.sync import iscoroutinefunction
from django.core.asgi import get_asgi_application
from django.core.wsgi import get_wsgi_application
from django.urls import Resolver404, resolve

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "notifications_project.settings")
async_views = get_asgi_application()
from django.conf import settings  # noqa: E402 - after the settings are set up

sync_views = WSGIMiddleware(get_wsgi_application(), workers=settings.WEB_THREADS)


def is_async_view(path_info: str) -> bool:
    try:
        return iscoroutinefunction(resolve(path_info).func)
    except Resolver404:
        return False


async def application(scope: dict, receive, send) -> None:  # noqa: ANN001 - the ASGI callables
    if scope["type"] == "http" and not is_async_view(scope["path"].removeprefix(scope.get("root_path", ""))):
        await sync_views(scope, receive, send)
    else:
        await async_views(scope, receive, send)
