"""Provider credentials at a production start: a provider is enabled when any of its credentials is set,
and then a missing one stops the start with one line naming it (never a value).

A provider with none of its credentials set is simply not configured: its recipients fail with
"... is not configured: set X" (apps/providers/registry.py). One that is half configured is an
operator's mistake that would fail every one of its recipients, so it is refused at once."""

from __future__ import annotations

import os
from dataclasses import dataclass


@dataclass(frozen=True)
class ProviderCredentials:
    provider: str
    required: tuple[str, ...]
    enabled_by: tuple[str, ...]  # any of these set means the operator meant to use the provider
    files: tuple[str, ...] = ()  # required settings that name a file, which must be readable


PROVIDERS = (
    ProviderCredentials("push (FCM)", ("FCM_CREDENTIALS_FILE",), ("FCM_CREDENTIALS_FILE", "FCM_PROJECT_ID"),
                        files=("FCM_CREDENTIALS_FILE",)),
    ProviderCredentials("push (APNs)", ("APNS_KEY_FILE", "APNS_KEY_ID", "APNS_TEAM_ID", "APNS_TOPIC"),
                        ("APNS_KEY_FILE", "APNS_KEY_ID", "APNS_TEAM_ID", "APNS_TOPIC"), files=("APNS_KEY_FILE",)),
    ProviderCredentials("push (Web Push)", ("WEBPUSH_VAPID_PRIVATE_KEY", "WEBPUSH_VAPID_SUBJECT"),
                        ("WEBPUSH_VAPID_PRIVATE_KEY", "WEBPUSH_VAPID_SUBJECT")),
    ProviderCredentials("sms (Twilio)", ("TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN", "TWILIO_FROM_NUMBER"),
                        ("TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN", "TWILIO_FROM_NUMBER")),
    ProviderCredentials("email (SMTP)", ("EMAIL_HOST",), ("EMAIL_HOST_USER", "EMAIL_HOST_PASSWORD")),
)


class MissingCredential(SystemExit):
    pass


def not_configured(settings: dict) -> list[str]:
    """The providers with none of their credentials set, each with what it needs: for a worker's start line."""
    idle = [f"{spec.provider} (set {', '.join(spec.required)})" for spec in PROVIDERS
            if not any(settings.get(name) for name in (*spec.enabled_by, *spec.required))]
    if not settings["EMAIL_BACKEND"].endswith("smtp.EmailBackend") or settings.get("EMAIL_HOST"):
        idle = [line for line in idle if not line.startswith("email")]
    return idle


def check_provider_credentials(settings: dict) -> None:
    """Raise MissingCredential (one line) for the first enabled provider with a credential missing."""
    for spec in PROVIDERS:
        if spec.provider == "email (SMTP)" and not settings["EMAIL_BACKEND"].endswith("smtp.EmailBackend"):
            continue
        given = [name for name in spec.enabled_by if settings.get(name)]
        if not given:
            continue
        missing = [name for name in spec.required if not settings.get(name)]
        if missing:
            verb, them = "is" if len(given) == 1 else "are", "it" if len(missing) == 1 else "them"
            raise MissingCredential(
                f"configuration error: {', '.join(missing)}: not set, but {spec.provider} is enabled "
                f"({', '.join(given)} {verb} set); set {them}, or unset {', '.join(given)}")
        for name in spec.files:
            if not os.access(settings[name], os.R_OK) or not os.path.isfile(settings[name]):
                raise MissingCredential(f"configuration error: {name}: expected a readable key file for "
                                        f"{spec.provider}, got {settings[name]!r}")
    if settings["EMAIL_BACKEND"].startswith("anymail.") and not settings.get("ANYMAIL"):
        raise MissingCredential(f"configuration error: ANYMAIL_<ESP>_API_KEY: not set, but email is enabled "
                                f"through {settings['EMAIL_BACKEND']}; set the ESP's ANYMAIL_* settings")
