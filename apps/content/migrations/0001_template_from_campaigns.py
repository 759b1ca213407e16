"""Template moves here from the campaigns app: state only, the table keeps its name (campaigns_template)."""

from django.db import migrations, models


def move_content_type(apps, schema_editor):
    content_type = apps.get_model("contenttypes", "ContentType")
    content_type.objects.filter(app_label="campaigns", model="template").update(app_label="content")


def move_content_type_back(apps, schema_editor):
    content_type = apps.get_model("contenttypes", "ContentType")
    content_type.objects.filter(app_label="content", model="template").update(app_label="campaigns")


class Migration(migrations.Migration):

    initial = True

    dependencies = [
        ('campaigns', '0004_part_release_claim'),
        ('contenttypes', '0002_remove_content_type_name'),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(state_operations=[
            migrations.CreateModel(
                name='Template',
                fields=[
                    ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                    ('name', models.CharField(max_length=200, unique=True)),
                    ('push_title', models.CharField(blank=True, max_length=200)),
                    ('push_body', models.TextField(blank=True)),
                    ('email_subject', models.CharField(blank=True, max_length=200)),
                    ('email_text', models.TextField(blank=True)),
                    ('email_html', models.TextField(blank=True)),
                    ('sms_text', models.TextField(blank=True)),
                    ('sample_context', models.JSONField(blank=True, default=dict, help_text='Example values, e.g. {"team": "Arsenal"}')),
                    ('updated_at', models.DateTimeField(auto_now=True)),
                ],
                options={
                    'db_table': 'campaigns_template',
                },
            ),
        ]),
        # permissions and admin history follow the model: its content type changes app, the rows stay
        migrations.RunPython(move_content_type, reverse_code=move_content_type_back),
    ]
