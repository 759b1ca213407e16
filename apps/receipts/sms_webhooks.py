"""Twilio's status callbacks and inbound messages, signed with the account's auth token.

The signature covers the public URL Twilio called (PUBLIC_BASE_URL and the path, as Twilio was told it)
and every form field, checked by the twilio library (apps/providers/sms_receipts.py). Unsigned: 400;
signed wrongly: 403; either way nothing changes.
"""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.http.multipartparser import MultiPartParserError
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from apps.providers import sms_receipts
from apps.providers.receipts import SuppressionReason

from . import metrics, store, suppressions

_EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response></Response>'


def _signed_form(request: HttpRequest):  # noqa: ANN202
    """The form if Twilio signed it, else the refusal to answer."""
    if not settings.TWILIO_AUTH_TOKEN:
        return None, JsonResponse({"error": "Twilio receipts are not configured"}, status=404)
    signature = request.headers.get("X-Twilio-Signature", "")
    if not signature:
        metrics.REFUSED.labels("twilio", "unsigned").inc()
        return None, JsonResponse({"error": "missing X-Twilio-Signature"}, status=400)
    try:
        form = request.POST
    except (MultiPartParserError, UnicodeDecodeError, ValueError):
        metrics.REFUSED.labels("twilio", "malformed").inc()
        return None, JsonResponse({"error": "malformed form"}, status=400)
    url = settings.PUBLIC_BASE_URL + request.get_full_path()
    if not sms_receipts.is_signed(settings.TWILIO_AUTH_TOKEN, url, form, signature):
        metrics.REFUSED.labels("twilio", "bad_signature").inc()
        return None, JsonResponse({"error": "bad X-Twilio-Signature"}, status=403)
    return form, None


@csrf_exempt
@require_POST
def status_callback(request: HttpRequest) -> HttpResponse:
    form, refusal = _signed_form(request)
    if refusal is not None:
        return refusal
    receipt = sms_receipts.status_receipt(form)
    if receipt is not None:
        store.record([receipt])
    return HttpResponse(status=204)


@csrf_exempt
@require_POST
def inbound_message(request: HttpRequest) -> HttpResponse:
    """STOP (and its synonyms) suppresses the number; START lifts it again, with the audit saying so."""
    form, refusal = _signed_form(request)
    if refusal is not None:
        return refusal
    reply = sms_receipts.reply(form)
    if reply is not None and reply.stop:
        suppressions.suppress("sms", [suppressions.Entry(reply.address, None, SuppressionReason.STOP_REPLY, "twilio",
                                                         "replied STOP")])
    elif reply is not None:
        suppressions.lift_address("sms", reply.address, (SuppressionReason.STOP_REPLY, SuppressionReason.OPT_OUT),
                                   by="twilio", note="replied START")
    return HttpResponse(_EMPTY_TWIML, content_type="text/xml")
