"""Jobs report the embedding phase's speed, time left and who did the work.

Registry side only (IndexJob): chunks to embed, chunks/s over the last
half-minute, the seconds left at that speed, and how many vectors each
worker wrote when Celery workers share a job's batches.
"""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("indexing", "0008_navigation_writes")]

    operations = [
        migrations.AddField(
            model_name="indexjob",
            name="chunks_to_embed",
            field=models.IntegerField(default=0),
        ),
        migrations.AddField(
            model_name="indexjob",
            name="embed_rate",
            field=models.FloatField(default=0.0),
        ),
        migrations.AddField(
            model_name="indexjob",
            name="eta_seconds",
            field=models.FloatField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name="indexjob",
            name="embedded_by",
            field=models.JSONField(blank=True, default=dict),
        ),
    ]
