"""A Django signal other apps can send to notify, without importing the delivery app's code:

    from apps.delivery.signals import notification_requested
    notification_requested.send(sender=MyModel, category="security", audience={"recipients": [42]},
                                channels=["push"], title="New sign-in", idempotency_key=f"signin-{event.pk}")
"""

from django.dispatch import Signal, receiver

from .models import Source

notification_requested = Signal()
# Sent by the finalizer once every recipient of a notification has a final state (kwargs: notification_id).
notification_completed = Signal()
# Sent by a send task when its provider called addresses dead (kwargs: channel, refused: [(recipient_id, address)]);
# apps/receipts suppresses them. Only for batches that have some.
addresses_refused = Signal()
# Sent by an erasure, in its transaction, once the recipient's row is gone (kwargs: recipient_id). Apps above
# delivery that keep their own traces of a recipient scrub them and answer {kind: count} of what changed.
recipient_erased = Signal()


@receiver(notification_requested)
def _on_notification_requested(sender, **kwargs):  # noqa: ANN001, ANN202
    from .service import notify

    kwargs.pop("signal", None)
    return notify(source=Source.SIGNAL, **kwargs)
