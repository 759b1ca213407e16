"""The end-user pages in English, Spanish and Portuguese over real HTTP (the live server): the recipient's own locale
when the platform ships it (pt-BR falls back to pt), else the browser's Accept-Language, else English."""

from __future__ import annotations

import urllib.error
import urllib.request
import uuid
from urllib.parse import urlparse

import pytest
from django.core.management import call_command

from apps.audience.models import Recipient
from apps.preferences import links


@pytest.fixture(scope="module", autouse=True)
def compiled():
    call_command("compile_translations", verbosity=0)  # as bin/_setup.sh does


@pytest.fixture
def base(live_server, settings):
    from apps.preferences.defaults import ensure_default_categories

    ensure_default_categories()
    settings.PUBLIC_BASE_URL = live_server.url
    return live_server.url


def fetch(url: str, accept_language: str | None = None, post: bytes | None = None) -> tuple[int, str, dict]:
    headers = {"Accept-Language": accept_language} if accept_language else {}
    request = urllib.request.Request(url, data=post, headers=headers, method="POST" if post is not None else "GET")
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:
            return answer.status, answer.read().decode(), dict(answer.headers)
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode(), dict(exc.headers)


def recipient(locale: str) -> Recipient:
    return Recipient.objects.create(external_id=f"i18n-{uuid.uuid4().hex[:8]}", locale=locale)


PAGE_WORDS = {
    "en": ("What we send you", "Kind of message", "Quiet hours, when nothing but security messages reach you"),
    "es": ("Lo que te enviamos", "Tipo de mensaje", "Horas de silencio, en las que solo te llegan mensajes"),
    "pt": ("O que enviamos para você", "Tipo de mensagem", "Horário de silêncio"),
}


@pytest.mark.parametrize(("locale", "accept", "expected"), [
    ("en", None, "en"),
    ("es", None, "es"),
    ("pt-BR", None, "pt"),  # the fallback chain: pt-BR -> pt
    ("es", "pt-BR,pt;q=0.9", "es"),  # the recipient's own locale wins over the browser's
    ("fr", "pt-BR,pt;q=0.9", "pt"),  # a locale not shipped: the browser's
    ("fr", "de", "en"),  # neither shipped: English
])
def test_the_preference_page_in_the_recipients_language(base, locale, accept, expected):
    status, page, headers = fetch(links.preference_page_url(recipient(locale).pk), accept)
    assert status == 200
    assert headers["Content-Language"].startswith(expected) and f'<html lang="{expected}' in page
    for words in PAGE_WORDS[expected]:
        assert words in page, (expected, words)
    others = {lang for lang in PAGE_WORDS if lang != expected}
    assert not any(PAGE_WORDS[lang][0] in page for lang in others)


@pytest.mark.parametrize(("locale", "confirm", "done", "channel"), [
    ("en", "Unsubscribe from promotions?", "You are unsubscribed", "Email"),
    ("es", "¿Darte de baja de promotions?", "Te has dado de baja", "Correo electrónico"),
    ("pt-BR", "Cancelar a inscrição em promotions?", "Sua inscrição foi cancelada", "E-mail"),
])
def test_the_unsubscribe_pages_in_each_language(base, locale, confirm, done, channel):
    person = recipient(locale)
    url = links.unsubscribe_url(person.pk, "promotions")
    status, page, _ = fetch(url)
    assert status == 200 and confirm in page
    status, page, _ = fetch(url, post=b"List-Unsubscribe=One-Click")
    assert status == 200 and done in page
    # the page it links to speaks the same language, channel names included
    [preferences] = [part.split('"', 1)[0] for part in page.split('href="')[1:]]
    assert urlparse(preferences).path.startswith("/preferences/")
    status, page, _ = fetch(preferences)
    assert status == 200 and f"<th>{channel}</th>" in page


@pytest.mark.parametrize(("accept", "words"), [
    (None, "This link is not valid: it may have been altered or cut short."),
    ("es-ES,es;q=0.8", "Este enlace no es válido: puede que se haya alterado o cortado."),
    ("pt", "Este link não é válido: pode ter sido alterado ou cortado."),
])
def test_a_bad_link_is_refused_in_the_browsers_language(base, accept, words):
    status, page, _ = fetch(f"{base}/preferences/forged-token", accept)
    assert status == 400 and words in page
