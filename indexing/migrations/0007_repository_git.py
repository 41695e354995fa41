"""The git HEAD (commit, branch) the last full index run of a repository read."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("indexing", "0006_text_segments"),
    ]

    operations = [
        migrations.AddField(
            model_name="repository",
            name="indexed_branch",
            field=models.TextField(blank=True, default=""),
        ),
        migrations.AddField(
            model_name="repository",
            name="indexed_commit",
            field=models.CharField(blank=True, default="", max_length=64),
        ),
    ]
