"""The Kafka bridge: `manage.py run_bridge --role events|send|retry|deferred` consumes a topic and hands each
message to its Celery queue (handlers.py), committing offsets only after the hand-off."""
