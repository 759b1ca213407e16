"""The platform's settings plus the WhatsApp-shaped channel."""

import os

from notifications_project.settings import *  # noqa: F403

NOTIFY_EXTRA_CHANNELS = ["tests.core.channel_whatsapp.spec.WHATSAPP"]
WHATSAPP_API_BASE = os.environ.get("WHATSAPP_API_BASE", "")
WHATSAPP_TOKEN = os.environ.get("WHATSAPP_TOKEN", "")
