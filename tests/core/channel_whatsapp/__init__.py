"""A WhatsApp-shaped channel added the way any new channel is: its spec, its provider module, settings. Nothing
outside this folder and tests/core/test_channel_spec.py knows about it."""
