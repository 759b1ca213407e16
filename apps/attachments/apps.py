from django.apps import AppConfig


class AttachmentsConfig(AppConfig):
    name = "apps.attachments"
    label = "attachments"

    def ready(self) -> None:
        from apps.delivery import attachment_hooks

        from . import usage

        attachment_hooks.register(attachment_hooks.AttachmentHooks(
            parse_ids=usage.parse_ids, check_allowed=usage.check_allowed, attach=usage.attach, ids_of=usage.ids_of,
            email_parts=usage.email_parts))
