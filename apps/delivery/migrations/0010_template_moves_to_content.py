"""Notifications point at content.Template: state only, the table (campaigns_template) stays."""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('content', '0001_template_from_campaigns'),
        ('delivery', '0009_api_scope_manage_callbacks'),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(state_operations=[
            migrations.AlterField(
                model_name='notification',
                name='template',
                field=models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.PROTECT, to='content.template'),
            ),
        ]),
    ]
