"""Template leaves the campaigns app's state for the content app's; no table changes."""

from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ('campaigns', '0005_template_foreign_keys_to_content'),
        ('delivery', '0010_template_moves_to_content'),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(state_operations=[
            migrations.DeleteModel(
                name='Template',
            ),
        ]),
    ]
