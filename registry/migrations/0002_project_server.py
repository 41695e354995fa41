"""Record which PostgreSQL server holds each project database."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("registry", "0001_initial"),
    ]

    operations = [
        # Every existing project lives on the registry's own server.
        migrations.AddField(
            model_name="project",
            name="server",
            field=models.CharField(
                db_index=True, default="default", editable=False, max_length=64
            ),
        ),
    ]
