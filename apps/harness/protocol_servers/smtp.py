"""SMTP (aiosmtpd): keeps or counts every mail it accepts; refuses nobody@ (550, no such mailbox) and
greylisted@ (451), and answers 452 (too many recipients for now) to a mail over its quota."""

from __future__ import annotations

from .common import Counts


class SmtpHandler:
    """With keep=True (the adapter tests) every accepted mail is kept in `messages`, parsed; the
    counts hold one per recipient address accepted either way."""

    def __init__(self, counts: Counts | None = None, keep: bool = True) -> None:
        self.messages: list = []
        self.counts = counts or Counts()
        self.keep = keep

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):  # noqa: ANN001, ANN201, N802
        if address.startswith("nobody@"):
            return f"550 5.1.1 <{address}>: Recipient address rejected: User unknown"
        if address.startswith("greylisted@"):
            return "451 4.7.1 Greylisted, please try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):  # noqa: ANN001, ANN201, N802
        if not self.counts.request(len(envelope.original_content or b"")):
            return "452 4.5.3 Too many recipients for now, try again later"
        for address in envelope.rcpt_tos:
            self.counts.accepted(address)
        if self.keep:
            from email import message_from_bytes, policy

            self.messages.append(message_from_bytes(envelope.original_content, policy=policy.default))
        await self.counts.hold()
        return "250 Message accepted for delivery"
