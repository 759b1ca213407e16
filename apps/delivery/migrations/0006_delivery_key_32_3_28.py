"""Delivery keys move from (notification << 36 | channel << 32 | recipient), whose notification part
overflowed at 2**27 notifications, to (notification << 31 | channel << 28 | recipient): 4.29 billion
notifications and 268 million recipients. Rows are re-keyed in place (through negative ids, so no
intermediate key collides)."""

from django.db import migrations

CODE = ("CASE channel WHEN 'push' THEN 0 WHEN 'email' THEN 1 WHEN 'sms' THEN 2 WHEN 'in_app' THEN 3"
        " WHEN 'webhook' THEN 4 END")

FORWARD = f"""
DO $$ BEGIN
  IF EXISTS (SELECT 1 FROM delivery_delivery WHERE recipient_id > 268435455 OR notification_id > 4294967295) THEN
    RAISE EXCEPTION 'a delivery row has a recipient id above 268435455 or a notification id above 4294967295';
  END IF;
END $$;
UPDATE delivery_delivery SET id = -id - 1;
UPDATE delivery_delivery SET id = (notification_id << 31) | (({CODE})::bigint << 28) | recipient_id;
"""

BACKWARD = f"""
UPDATE delivery_delivery SET id = -id - 1;
UPDATE delivery_delivery SET id = (notification_id << 36) | (({CODE})::bigint << 32) | recipient_id;
"""


class Migration(migrations.Migration):
    dependencies = [
        ('delivery', '0005_notification_dispatch_epoch'),
    ]

    operations = [migrations.RunSQL(FORWARD, BACKWARD)]
