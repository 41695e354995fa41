"""File texts in segments of 200 lines, with a second trigram index that joins identifiers.

Two things made selective grep_code patterns slower than ripgrep on a 10k-file
project, both in the recheck of the trigram lookup's candidates:

- pg_trgm takes trigrams within runs of letters and digits only, so
  `get_default_redirect` was indexed as the words `get`, `default` and
  `redirect`, and a lookup of `def get_di` narrowed to every file holding
  `def`, `get` and `di`: 3,461 of site-packages' 8,490 files, each rechecked
  (89 ms). The second index reads `_` as the letter q
  (`replace(content, '_', 'q')`): an identifier is one word and its trigrams
  cross its underscores. Any literal a text holds is held, with the same
  replacement, by the replaced text, so the lookup narrows less than exactly
  but never misses. grep_code uses it for literals holding `_`, and the plain
  index otherwise (replace() makes a recheck about three times dearer).
- Trigrams anywhere in a whole file: a file holding `def` on one line and
  `get_de` 900 lines away is a candidate, and the whole file is rechecked.
  In segments the trigrams must meet within 200 lines and only the segments
  found are rechecked and verified (`def get_de`: 62 ms for 878 files, 20 ms
  for 1,084 segments). A match never spans a line, so never a segment.

Existing texts are split here, in SQL, the way indexing.storing splits them
(Python's str.split("\\n") and string_to_array agree), so no repository has
to be indexed again. The text stays uncompressed (see 0005).
"""

import django.contrib.postgres.indexes
import django.db.models.deletion
import django.db.models.functions.text
from django.contrib.postgres.indexes import OpClass
from django.db import migrations, models
from django.db.models import Value

SEGMENT_LINES = 200

# Lines keep their breaks (indexing.storing.text_segments): a segment is its
# lines joined, and a break after the last one unless it ends the text.
# `lines` ends with '' when the text ends with a break: that is no line.
_SPLIT = f"""
INSERT INTO code_text_segments (file_id, first_line, content)
SELECT t.file_id, (n - 1) * {SEGMENT_LINES} + 1,
       array_to_string(l.lines[(n - 1) * {SEGMENT_LINES} + 1 : n * {SEGMENT_LINES}], E'\\n')
       || CASE WHEN n * {SEGMENT_LINES} < l.k THEN E'\\n' ELSE '' END
FROM code_file_texts t
CROSS JOIN LATERAL (
    SELECT lines, coalesce(array_length(lines, 1), 0) AS k,
           coalesce(array_length(lines, 1), 0)
           - CASE WHEN lines[array_length(lines, 1)] = '' THEN 1 ELSE 0 END AS pieces
    FROM (SELECT string_to_array(t.content, E'\\n') AS lines) a
) l
CROSS JOIN LATERAL generate_series(
    1, greatest(1, ceil(l.pieces / {SEGMENT_LINES}.0)::int)
) AS n
"""


# Backwards: each file's segments joined again (they keep their line breaks).
_JOIN = """
INSERT INTO code_file_texts (file_id, content)
SELECT file_id, string_agg(content, '' ORDER BY first_line)
FROM code_text_segments GROUP BY file_id
"""


class Migration(migrations.Migration):
    dependencies = [
        ("indexing", "0005_file_texts"),
    ]

    operations = [
        migrations.CreateModel(
            name="CodeTextSegment",
            fields=[
                ("id", models.BigAutoField(primary_key=True, serialize=False)),
                ("first_line", models.PositiveIntegerField()),
                ("content", models.TextField()),
                (
                    "file",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="text_segments",
                        to="indexing.codefile",
                    ),
                ),
            ],
            options={
                "db_table": "code_text_segments",
            },
        ),
        migrations.RunSQL(
            sql="ALTER TABLE code_text_segments ALTER COLUMN content SET STORAGE "
            "EXTERNAL",
            reverse_sql=migrations.RunSQL.noop,
        ),
        # Before the indexes: one build is cheaper than row-by-row inserts.
        migrations.RunSQL(sql=_SPLIT, reverse_sql=_JOIN),
        migrations.DeleteModel(
            name="CodeFileText",
        ),
        migrations.AddConstraint(
            model_name="codetextsegment",
            constraint=models.UniqueConstraint(
                fields=("file", "first_line"), name="code_text_segments_file_line"
            ),
        ),
        migrations.AddIndex(
            model_name="codetextsegment",
            index=django.contrib.postgres.indexes.GinIndex(
                fields=["content"],
                name="code_text_segments_trgm",
                opclasses=["gin_trgm_ops"],
            ),
        ),
        # Django writes OpClass over a function as `((REPLACE(...) gin_trgm_ops))`,
        # which PostgreSQL refuses: the index is made in SQL, the state kept.
        migrations.SeparateDatabaseAndState(
            database_operations=[
                migrations.RunSQL(
                    sql="CREATE INDEX code_text_segments_joined_trgm ON "
                    "code_text_segments USING gin ((replace(content, '_', 'q')) "
                    "gin_trgm_ops)",
                    reverse_sql="DROP INDEX code_text_segments_joined_trgm",
                ),
            ],
            state_operations=[
                migrations.AddIndex(
                    model_name="codetextsegment",
                    index=django.contrib.postgres.indexes.GinIndex(
                        OpClass(
                            django.db.models.functions.text.Replace(
                                "content", Value("_"), Value("q")
                            ),
                            name="gin_trgm_ops",
                        ),
                        name="code_text_segments_joined_trgm",
                    ),
                ),
            ],
        ),
    ]
