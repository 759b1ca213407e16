"""Email attachment settings (imported into settings.py; README "Attachments and translated pages")."""

from pathlib import Path

from .env import ConfigError, env_int, env_list, env_str

# Email attachments (apps/attachments, README "Attachments and translated pages"): kept in the "attachments"
# storage, the local filesystem unless NOTIFY_ATTACHMENT_STORAGE=s3 (django-storages and boto3; any
# S3-compatible server at AWS_S3_ENDPOINT_URL; credentials as boto3 finds them, e.g. AWS_ACCESS_KEY_ID).
ATTACHMENT_STORAGE = env_str("NOTIFY_ATTACHMENT_STORAGE", "filesystem")
if ATTACHMENT_STORAGE not in ("filesystem", "s3"):
    raise ConfigError("NOTIFY_ATTACHMENT_STORAGE", "filesystem or s3", ATTACHMENT_STORAGE)
ATTACHMENT_MAX_BYTES = env_int("NOTIFY_ATTACHMENT_MAX_BYTES", 25 * 1024 * 1024, 1)
# Files up to this size go in the email as MIME parts; larger ones as a signed link that expires.
ATTACHMENT_INLINE_MAX_BYTES = env_int("NOTIFY_ATTACHMENT_INLINE_MAX_BYTES", 2 * 1024 * 1024, 0)
ATTACHMENT_CONTENT_TYPES = env_list("NOTIFY_ATTACHMENT_CONTENT_TYPES", [
    "application/pdf", "image/png", "image/jpeg", "image/gif", "text/plain", "text/csv", "text/calendar",
    "application/zip"])
ATTACHMENTS_PER_MESSAGE = env_int("NOTIFY_ATTACHMENTS_PER_MESSAGE", 10, 1)
ATTACHMENT_LINK_MAX_AGE_SECONDS = env_int("NOTIFY_ATTACHMENT_LINK_MAX_AGE_SECONDS", 30 * 86400, 60)
# On S3 a valid link answers with a redirect to a presigned URL that lasts this long.
ATTACHMENT_PRESIGNED_SECONDS = env_int("NOTIFY_ATTACHMENT_PRESIGNED_SECONDS", 300, 1)


def attachment_storage(local_root: Path) -> dict:
    """The "attachments" storage: S3 through django-storages, or the filesystem under local_root."""
    if ATTACHMENT_STORAGE == "s3":
        storage = {"BACKEND": "storages.backends.s3.S3Storage", "OPTIONS": {
            "bucket_name": env_str("AWS_STORAGE_BUCKET_NAME", ""), "location": env_str("NOTIFY_ATTACHMENT_PREFIX", ""),
            "endpoint_url": env_str("AWS_S3_ENDPOINT_URL", "") or None,
            "region_name": env_str("AWS_S3_REGION_NAME", "") or None,
            "addressing_style": env_str("AWS_S3_ADDRESSING_STYLE", "") or None,
            "signature_version": "s3v4", "default_acl": None, "querystring_auth": True, "file_overwrite": False}}
        if not storage["OPTIONS"]["bucket_name"]:
            raise ConfigError("AWS_STORAGE_BUCKET_NAME", "a bucket with NOTIFY_ATTACHMENT_STORAGE=s3", "")
    else:
        storage = {"BACKEND": "django.core.files.storage.FileSystemStorage", "OPTIONS": {
            # a test run's files under a directory of its own, removed at its end (tests/conftest.py)
            "location": env_str("NOTIFY_ATTACHMENT_ROOT", str(local_root)), "base_url": None}}
    return storage
