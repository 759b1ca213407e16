from django.db import migrations, models


def give_existing_endpoints_a_secret(apps, schema_editor):  # noqa: ANN001, ANN201
    from apps.providers.standard_webhooks import new_secret

    Recipient = apps.get_model("audience", "Recipient")  # noqa: N806
    for recipient in Recipient.objects.exclude(webhook_url="").filter(webhook_secret="").only("pk").iterator():
        Recipient.objects.filter(pk=recipient.pk).update(webhook_secret=new_secret())


class Migration(migrations.Migration):

    dependencies = [
        ('audience', '0004_recipient_webhook_url_public_https'),
    ]

    operations = [
        migrations.AddField(
            model_name='recipient',
            name='webhook_secret',
            field=models.CharField(blank=True, db_default='', editable=False, max_length=64),
        ),
        migrations.RunPython(give_existing_endpoints_a_secret, migrations.RunPython.noop),
    ]
