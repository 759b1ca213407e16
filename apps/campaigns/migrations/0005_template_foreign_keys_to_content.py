"""Campaigns point at content.Template: state only, the table (campaigns_template) and its constraints stay."""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('campaigns', '0004_part_release_claim'),
        ('content', '0001_template_from_campaigns'),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(state_operations=[
            migrations.AlterField(
                model_name='campaignpart',
                name='template',
                field=models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, to='content.template'),
            ),
            migrations.AlterField(
                model_name='campaignvariant',
                name='template',
                field=models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, to='content.template'),
            ),
            migrations.AlterField(
                model_name='campaign',
                name='template',
                field=models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, to='content.template'),
            ),
        ]),
    ]
