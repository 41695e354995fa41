"""Keep search statistics (counters and a ring of latencies) in project databases."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("indexing", "0001_initial"),
    ]

    operations = [
        migrations.CreateModel(
            name="SearchCounter",
            fields=[
                (
                    "mode",
                    models.CharField(max_length=32, primary_key=True, serialize=False),
                ),
                ("queries", models.BigIntegerField(default=0)),
                ("total_ms", models.FloatField(default=0.0)),
                ("updated_at", models.DateTimeField()),
            ],
            options={
                "db_table": "search_counters",
            },
        ),
        migrations.CreateModel(
            name="SearchLatency",
            fields=[
                ("pk", models.CompositePrimaryKey("mode", "slot", serialize=False)),
                ("mode", models.CharField(max_length=32)),
                ("slot", models.IntegerField()),
                ("latency_ms", models.FloatField()),
                ("recorded_at", models.DateTimeField()),
            ],
            options={
                "db_table": "search_latencies",
            },
        ),
    ]
