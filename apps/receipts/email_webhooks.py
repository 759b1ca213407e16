"""ESP tracking webhooks through django-anymail's own views and its `tracking` signal.

anymail checks each request (basic auth with ANYMAIL_WEBHOOK_SECRET, and the ESP's signature where it has
one: Mailgun's ANYMAIL_MAILGUN_WEBHOOK_SIGNING_KEY, SendGrid's ANYMAIL_SENDGRID_TRACKING_WEBHOOK_VERIFICATION_KEY)
and sends one signal per event. The signal handler only collects the receipts of the request; once
anymail's view has answered, they are recorded in bulk (one batched webhook, one set of statements).
A refused request is a 400 and changes nothing; an ESP with no secret configured is not served (404),
since anymail would otherwise accept anyone's posts.
"""

from __future__ import annotations

import warnings
from contextvars import ContextVar

from anymail.exceptions import AnymailError, AnymailNotSupportedWarning, AnymailWebhookValidationFailure
from anymail.signals import AnymailTrackingEvent
from anymail.webhooks.amazon_ses import AmazonSESTrackingWebhookView
from anymail.webhooks.mailgun import MailgunTrackingWebhookView
from anymail.webhooks.postmark import PostmarkTrackingWebhookView
from anymail.webhooks.sendgrid import SendGridTrackingWebhookView
from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt

from apps.providers.email_receipts import email_receipt
from apps.providers.receipts import Receipt

from . import metrics, store

warnings.filterwarnings("ignore", category=AnymailNotSupportedWarning)  # SendGrid's, on every view instance

ESP_VIEWS = {
    "amazon_ses": AmazonSESTrackingWebhookView, "mailgun": MailgunTrackingWebhookView,
    "postmark": PostmarkTrackingWebhookView, "sendgrid": SendGridTrackingWebhookView,
}
# What each ESP needs besides the shared basic-auth secret (or instead of it, for a signing ESP).
_SIGNING_KEYS = {"mailgun": "MAILGUN_WEBHOOK_SIGNING_KEY", "sendgrid": "SENDGRID_TRACKING_WEBHOOK_VERIFICATION_KEY"}
_collected: ContextVar[list[Receipt] | None] = ContextVar("receipts_collected", default=None)
# What anymail's parsers raise on a body they cannot read (after the request's auth has passed).
_MALFORMED = (AnymailError, ValueError, KeyError, TypeError, AttributeError, IndexError)


def on_tracking(sender: object, event: AnymailTrackingEvent, esp_name: str, **kwargs: object) -> None:
    receipt = email_receipt(event, esp_name)
    if receipt is None:
        return
    collected = _collected.get()
    if collected is None:  # anymail's view mounted some other way: record it alone
        store.record([receipt])
    else:
        collected.append(receipt)


def is_enabled(esp: str) -> bool:
    config = getattr(settings, "ANYMAIL", {}) or {}
    if esp == "mailgun":  # anymail refuses to build its view without the signing key
        return bool(config.get(_SIGNING_KEYS["mailgun"]))
    return bool(config.get("WEBHOOK_SECRET") or config.get(_SIGNING_KEYS.get(esp, "")))


def _refused(esp: str, why: str, status: int = 400) -> JsonResponse:
    metrics.REFUSED.labels(esp, why).inc()
    return JsonResponse({"error": f"{why} {esp} webhook"}, status=status)


def tracking_view(esp: str):  # noqa: ANN201
    view_class = ESP_VIEWS[esp]

    @csrf_exempt
    def receive(request: HttpRequest) -> HttpResponse:
        if not is_enabled(esp):
            return JsonResponse({"error": f"{esp} receipts are not configured"}, status=404)
        token = _collected.set([])
        try:
            try:
                response = view_class.as_view()(request)
            except AnymailWebhookValidationFailure:
                return _refused(esp, "unauthenticated")
            except _MALFORMED:
                return _refused(esp, "malformed")
            receipts = _collected.get() or []
        finally:
            _collected.reset(token)
        if response.status_code < 300 and receipts:
            store.record(receipts)
        return response

    receive.__name__ = f"{esp}_tracking"
    return receive
