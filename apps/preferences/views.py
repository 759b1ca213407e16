"""End-user preferences: a JSON API (recipient token), a signed preference page, and one-click unsubscribe.

GET/PATCH /api/me/preferences      the JSON API, in apps/api/me.py
GET/POST  /preferences/<signed>    the page linked from messages
GET/POST  /unsubscribe/<signed>    RFC 8058: mail clients POST "List-Unsubscribe=One-Click" here
"""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import translation
from django.utils.cache import patch_vary_headers
from django.utils.translation import gettext_lazy as _
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from apps.audience.models import Recipient
from apps.core.channels import Channel

from . import language, links, service
from .models import Category


def _link_error(request: HttpRequest, exc: links.LinkError) -> HttpResponse:
    message = exc.args[0]  # lazy: translated when the page renders, in its language
    return _render(request, None, "preferences/link_error.html", {"message": message}, status=exc.status)


def _render(request: HttpRequest, recipient: Recipient | None, template: str, context: dict,
            status: int = 200) -> HttpResponse:
    """In the recipient's language if the platform ships it, else the browser's (apps/preferences/language.py)."""
    code = language.for_page(request, recipient.locale if recipient is not None else None)
    with translation.override(code):
        answer = render(request, template, context, status=status)
    answer["Content-Language"] = code
    patch_vary_headers(answer, ["Accept-Language"])
    return answer


def _recipient(recipient_id: int) -> Recipient:
    recipient = Recipient.objects.filter(pk=recipient_id).first()
    if recipient is None:
        raise links.LinkError(_("This link is for an account that no longer exists."), 404)
    return recipient


@require_http_methods(["GET", "POST"])
def preference_page(request: HttpRequest, token: str) -> HttpResponse:
    try:
        recipient = _recipient(links.read_preference_token(token))
    except links.LinkError as exc:
        return _link_error(request, exc)
    error, saved = None, False
    if request.method == "POST":
        try:
            service.update(recipient, _form_to_update(request.POST))
            saved = True
            recipient.refresh_from_db()
        except service.PreferenceError as exc:
            error = exc
    status = 400 if error else 200
    return _render(request, recipient, "preferences/page.html",
                   {"state": service.state(recipient), "channels": Channel.choices, "error": error, "saved": saved},
                   status=status)


def _form_to_update(form) -> dict:  # noqa: ANN001
    checked = set(form.getlist("on"))
    choices = {c.slug: {ch: f"{c.slug}:{ch}" in checked for ch in Channel.values if c.can_turn_off(ch)}
               for c in Category.objects.all()}
    update: dict = {"preferences": choices, "timezone": form.get("timezone", "").strip() or "UTC"}
    start, end = form.get("quiet_start", "").strip(), form.get("quiet_end", "").strip()
    update["quiet_hours"] = {"start": start, "end": end} if start or end else None
    return update


@csrf_exempt  # RFC 8058: the mail client posts without a session or form token; the link is the credential
@require_http_methods(["GET", "POST"])
def unsubscribe(request: HttpRequest, token: str) -> HttpResponse:
    try:
        recipient_id, slug = links.read_unsubscribe_token(token)
        recipient = _recipient(recipient_id)
        category = Category.objects.filter(slug=slug).first()
        if category is None:
            raise links.LinkError(_("This link is for a kind of message that no longer exists."), 404)
    except links.LinkError as exc:
        return _link_error(request, exc)
    if request.method == "GET":  # a link scanner must not unsubscribe anyone: confirm with a POST
        return _render(request, recipient, "preferences/unsubscribe.html", {"category": category, "done": False})
    service.unsubscribe(recipient, category)
    return _render(request, recipient, "preferences/unsubscribe.html",
                   {"category": category, "done": True, "preferences_url": links.preference_page_url(recipient.pk)})
