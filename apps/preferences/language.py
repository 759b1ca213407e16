"""The language of the end-user pages (preference page, unsubscribe): the recipient's own locale when it is one
the platform ships (pt-BR falls back to pt), else the browser's Accept-Language, else English."""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest
from django.utils import translation
from django.utils.translation import gettext_noop

# The channel names the preference page shows, for makemessages (models.Channel holds them untranslated).
CHANNEL_LABELS = (gettext_noop("Push"), gettext_noop("Email"), gettext_noop("SMS"), gettext_noop("In-app"),
                  gettext_noop("Webhook"))


def supported(locale: str | None) -> str | None:
    """The shipped language for a locale such as "pt-BR", "pt_br" or "es", or None."""
    if not locale or not isinstance(locale, str) or len(locale) > 16:
        return None
    try:
        return translation.get_supported_language_variant(translation.to_language(locale.replace("-", "_")))
    except LookupError:
        return None


def for_page(request: HttpRequest, recipient_locale: str | None = None) -> str:
    return (supported(recipient_locale) or supported(translation.get_language_from_request(request))
            or settings.LANGUAGE_CODE)
