from apps.core.channels import ChannelSpec

WHATSAPP = ChannelSpec(
    "whatsapp", "WhatsApp", 5,
    "SELECT id, phone, '', NULL, 0, '' FROM audience_recipient WHERE id = ANY(%s::bigint[]) AND phone <> ''",
    "no_phone", title_fields=(), body_fields=("sms_text", "push_body"),
    transport="tests.core.channel_whatsapp.transport.build",
)
