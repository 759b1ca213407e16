"""Environment helpers: every setting comes from the environment, and a bad value stops
start-up with one line that names the variable and what was expected."""

from __future__ import annotations

import os
import sys
from urllib.parse import urlparse

import environ

_env = environ.Env()


class ConfigError(SystemExit):
    def __init__(self, name: str, expected: str, got: str) -> None:
        super().__init__(f"configuration error: {name}: expected {expected}, got {got!r}")


# Secrets that may come from a file (docker-compose mounts secrets under /run/secrets/): NAME_FILE.
SECRET_VARIABLES = ("DJANGO_SECRET_KEY", "DATABASE_URL", "EMAIL_HOST_PASSWORD", "TWILIO_AUTH_TOKEN",
                    "METRICS_TOKEN", "KAFKA_SASL_PASSWORD")


def load_secret_files() -> None:
    """Set NAME from the file NAME_FILE names, for the secrets above and any ANYMAIL_* (unless NAME is set)."""
    for file_variable, path in list(os.environ.items()):
        name = file_variable.removesuffix("_FILE")
        if name == file_variable or name in os.environ:
            continue
        if name in SECRET_VARIABLES or name.startswith("ANYMAIL_"):
            try:
                with open(path, encoding="utf-8") as secret:
                    os.environ[name] = secret.read().strip()
            except OSError as exc:
                raise ConfigError(file_variable, "a readable file holding the secret",
                                  f"{path} ({exc.strerror})") from None


def env_str(name: str, default: str) -> str:
    return os.environ.get(name, default)


def env_int(name: str, default: int, minimum: int = 0) -> int:
    raw = os.environ.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(name, "an integer", raw) from None
    if value < minimum:
        raise ConfigError(name, f"an integer >= {minimum}", raw)
    return value


def env_bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None:
        return default
    if raw.lower() in ("1", "true", "yes", "on"):
        return True
    if raw.lower() in ("0", "false", "no", "off", ""):
        return False
    raise ConfigError(name, "a boolean (true/false)", raw)


def env_list(name: str, default: list[str]) -> list[str]:
    raw = os.environ.get(name)
    if raw is None:
        return default
    return [item.strip() for item in raw.split(",") if item.strip()]


def masked(url: str) -> str:
    """The URL with any password in it replaced, for error messages and logs."""
    try:
        parsed = urlparse(url)
        password = parsed.password
    except ValueError:
        return "(a malformed URL, not shown)"
    if not password:
        return url
    netloc = parsed.netloc.replace(f":{password}@", ":***@", 1)
    return parsed._replace(netloc=netloc).geturl()


def env_url(name: str, default: str, schemes: tuple[str, ...]) -> str:
    raw = os.environ.get(name, default)
    try:
        parsed = urlparse(raw)
        valid = parsed.scheme in schemes and bool(parsed.hostname)
    except ValueError:
        valid = False
    if not valid:
        raise ConfigError(name, f"a URL like {schemes[0]}://host:port/...", masked(raw))
    return raw


def env_database(name: str, default: str) -> dict:
    url = env_url(name, default, ("postgres", "postgresql", "pgsql"))
    try:
        return _env.db_url_config(url)
    except Exception:
        raise ConfigError(name, "a postgres:// URL", masked(url)) from None


def database_settings(default_url: str) -> dict:
    """The default database from DATABASE_URL and its DATABASE_* tuning variables (README "Configuration")."""
    database = env_database("DATABASE_URL", default_url)
    database.update(CONN_MAX_AGE=env_int("DATABASE_CONN_MAX_AGE", 60), CONN_HEALTH_CHECKS=True)
    database.setdefault("OPTIONS", {})["connect_timeout"] = env_int("DATABASE_CONNECT_TIMEOUT", 5, 1)
    # The web tier's connections: a pool per process (apps/core/pooled_postgresql), since under ASGI no
    # thread lives long enough to keep one. 0: a connection per thread, as Django does.
    pool_size = env_int("DATABASE_POOL_SIZE", 0, 0)
    if pool_size:
        database.update(ENGINE="apps.core.pooled_postgresql", POOL_SIZE=pool_size,
                        POOL_TIMEOUT=env_int("DATABASE_POOL_TIMEOUT", 5, 1))
    return database


def env_origins(name: str, default: list[str]) -> list[str]:
    origins = env_list(name, default)
    for origin in origins:
        if not origin.startswith(("https://", "http://")):
            raise ConfigError(name, "origins like https://notify.example.com, comma-separated", origin)
    return origins


def env_proxy_header(name: str) -> tuple[str, str] | None:
    """'X-Forwarded-Proto: https' -> ("HTTP_X_FORWARDED_PROTO", "https"); empty or unset: None."""
    raw = os.environ.get(name, "").strip()
    if not raw:
        return None
    header, _, value = raw.partition(":")
    if not header.strip() or not value.strip():
        raise ConfigError(name, "a header and the value meaning https, e.g. 'X-Forwarded-Proto: https'", raw)
    return "HTTP_" + header.strip().upper().replace("-", "_"), value.strip()


def running_under_pytest() -> bool:
    return "pytest" in sys.modules
