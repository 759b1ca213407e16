"""LOGGING (imported into settings.py): one console handler, text or one JSON object per line."""

from .env import ConfigError


def logging_config(level: str, log_format: str) -> dict:
    if log_format not in ("text", "json"):
        raise ConfigError("LOG_FORMAT", "text or json", log_format)
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"context": {"()": "apps.core.logs.ContextFilter"}},
        "formatters": {
            "text": {"format": "%(asctime)s %(levelname)s %(name)s %(context)s%(message)s"},
            "json": {"()": "apps.core.logs.JsonFormatter"},
        },
        "handlers": {"console": {"class": "logging.StreamHandler", "formatter": log_format, "filters": ["context"]}},
        "root": {"handlers": ["console"], "level": level},
        # httpx logs every request's URL at INFO: for APNs that is the device token (a contact point), once a push.
        "loggers": {"django.db.backends": {"level": "WARNING"}, "httpx": {"level": "WARNING"},
                    "httpcore": {"level": "WARNING"}},
    }
