"""Email through Django's email backends: SMTP, or any django-anymail ESP (SES, SendGrid, Mailgun...)
by setting EMAIL_BACKEND. One connection serves the whole batch; each mail is sent on its own so
that one refused address fails that recipient only.

SMTP answers: 5xx for a recipient is permanent (the mailbox does not exist), 4xx is transient
(greylisting, mailbox busy), and a dropped connection is transient for the mails not yet sent.
"""

from __future__ import annotations

import smtplib
from email.utils import make_msgid

from django.core.mail import EmailMultiAlternatives, get_connection

from . import email_attachments
from .base import Content, Outcome, Result, Target, Transport, permanent, transient
from .http_answers import failure
from .unsubscribe import with_unsubscribe


class EmailTransport(Transport):
    name = "email"

    def __init__(self, from_email: str, backend: str | None = None, rate_per_s: float = 0.0) -> None:
        self.from_email = from_email
        self.backend = backend
        self.rate_per_s = rate_per_s

    def send(self, content: Content, targets: list[Target]) -> list[Result]:
        try:  # each file once per call, not once per recipient
            files = email_attachments.fetch({id(c): c for c in (t.content or content for t in targets)}.values())
        except email_attachments.Unavailable as exc:
            return [transient(str(exc))] * len(targets)
        connection = get_connection(self.backend, fail_silently=False)
        try:
            connection.open()
        except (OSError, smtplib.SMTPException) as exc:
            return [transient(f"mail server unreachable: {type(exc).__name__}")] * len(targets)
        results: list[Result] = []
        try:
            for index, target in enumerate(targets):
                result = self._send_one(connection, target.content or content, target, files)
                results.append(result)
                if result.error.startswith("connection lost"):
                    results += [result] * (len(targets) - index - 1)
                    break
        finally:
            try:
                connection.close()
            except (OSError, smtplib.SMTPException):
                pass
        return results

    def _send_one(self, connection, content: Content, target: Target, files: dict) -> Result:  # noqa: ANN001
        message_id = make_msgid(domain=self.from_email.rpartition("@")[2] or None)
        headers = {"Message-ID": message_id}
        unsubscribe = content.unsubscribe_url(target.recipient_id) if content.unsubscribe_url is not None else None
        if unsubscribe:  # RFC 8058 one-click unsubscribe
            headers["List-Unsubscribe"] = f"<{unsubscribe}>"
            headers["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
        content = with_unsubscribe(email_attachments.with_links(content, files), unsubscribe)  # visible link too
        mail = EmailMultiAlternatives(content.title, content.body, self.from_email, [target.address],
                                      headers=headers, connection=connection)
        if content.html:
            mail.attach_alternative(content.html, "text/html")
        email_attachments.add_parts(mail, content, files)
        try:
            sent = connection.send_messages([mail])
        except smtplib.SMTPRecipientsRefused as exc:
            code, words = next(iter(exc.recipients.values()))
            return _smtp_failure(code, words, invalid_address=True)
        except smtplib.SMTPResponseException as exc:
            return _smtp_failure(exc.smtp_code, exc.smtp_error)
        except (TimeoutError, smtplib.SMTPServerDisconnected, OSError) as exc:
            return transient(f"connection lost: {type(exc).__name__}")
        except Exception as exc:  # an ESP backend's own error (anymail raises AnymailError subclasses)
            return _esp_failure(exc)
        if not sent:
            return transient("not sent")
        esp_status = getattr(mail, "anymail_status", None)
        return Result(Outcome.SENT, provider_id=getattr(esp_status, "message_id", None) or message_id)


def _smtp_failure(code: int, words: bytes | str, invalid_address: bool = False) -> Result:
    text = words.decode(errors="replace") if isinstance(words, bytes) else str(words)
    error = f"SMTP {code}: {text}"[:300]
    if 400 <= code < 500:
        return transient(error)
    return permanent(error, invalid_address=invalid_address and code in (550, 551, 553))


def _esp_failure(exc: Exception) -> Result:
    status = getattr(getattr(exc, "response", None), "status_code", None)
    error = f"{type(exc).__name__}: {exc}"
    return failure(status, error) if status is not None else transient(error[:300])
