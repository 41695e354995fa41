"""Each indexed file's text, with a trigram index, for grep_code.

The text is stored uncompressed (STORAGE EXTERNAL): every candidate the
trigram index picks is read again to verify it, and pglz decompression made
that 8x slower (143 ms against 18 for 147 files of site-packages) for 2.7x
less disk on the table (the index is apart). Files of an older analysis
(indexing.storing.ANALYSIS_VERSION < 2) get their text on the next run.
"""

import django.contrib.postgres.indexes
import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("indexing", "0004_symbols"),
    ]

    operations = [
        migrations.CreateModel(
            name="CodeFileText",
            fields=[
                (
                    "file",
                    models.OneToOneField(
                        on_delete=django.db.models.deletion.CASCADE,
                        primary_key=True,
                        related_name="text",
                        serialize=False,
                        to="indexing.codefile",
                    ),
                ),
                ("content", models.TextField()),
            ],
            options={
                "db_table": "code_file_texts",
                "indexes": [
                    django.contrib.postgres.indexes.GinIndex(
                        fields=["content"],
                        name="code_file_texts_trgm",
                        opclasses=["gin_trgm_ops"],
                    )
                ],
            },
        ),
        migrations.RunSQL(
            sql="ALTER TABLE code_file_texts ALTER COLUMN content SET STORAGE EXTERNAL",
            reverse_sql="ALTER TABLE code_file_texts ALTER COLUMN content SET STORAGE "
            "EXTENDED",
        ),
    ]
