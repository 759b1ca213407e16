"""The web tier's entry point: gunicorn with uvicorn workers (see README "Running the processes").
Sync views run in threads; the inbox's server-sent-event stream is async and holds no thread."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "notifications_project.settings")
application = get_asgi_application()
