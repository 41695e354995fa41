"""Cheaper writes of the navigation tables, which index runs spend most on.

References become one row per name and file, the uses in parallel arrays:
a row per use made writing them the largest part of an index run (three
index entries per use). The rows are regrouped here, in file order, so a
project keeps answering find_references without being indexed again: the
stored facts do not change, only their layout. Reversible: the arrays are
unnested back into one row per use.

Symbols lose their foreign-key constraints and the index on file_id alone
((file_id, start_line) serves), references their duplicate index on
file_id; columns no query filters on are left out of ANALYZE.
"""

import django.contrib.postgres.fields
import django.db.models.deletion
from django.db import migrations, models

_KIND_LETTER = (
    "CASE kind WHEN 'call' THEN 'c' WHEN 'attribute' THEN 'a' WHEN 'type' THEN 't' "
    "WHEN 'import' THEN 'i' ELSE 'n' END"
)
_LETTER_KIND = (
    "CASE u.letter WHEN 'c' THEN 'call' WHEN 'a' THEN 'attribute' "
    "WHEN 't' THEN 'type' WHEN 'i' THEN 'import' ELSE 'name' END"
)
_ORDER = 'ORDER BY line, "column"'
_UNSAMPLED = (
    ("code_references", "lines"),
    ("code_references", "columns"),
    ("code_references", "kinds"),
    ("code_references", "containers"),
    ("code_symbols", "signature"),
    ("code_symbols", "doc"),
    ("code_symbols", "parent"),
    ("code_symbols", "chunk_id"),
)


class Migration(migrations.Migration):
    dependencies = [
        ("indexing", "0007_repository_git"),
    ]

    operations = [
        # The rows step aside under another name; their indexes are not
        # needed to regroup them.
        migrations.RunSQL(
            sql=[
                "ALTER TABLE code_references RENAME TO code_references_rows",
                "ALTER TABLE code_references_rows RENAME CONSTRAINT "
                "code_references_pkey TO code_references_rows_pkey",
                "DROP INDEX code_references_name",
                "DROP INDEX code_references_file",
            ],
            reverse_sql=[
                "ALTER TABLE code_references_rows RENAME TO code_references",
                "ALTER TABLE code_references RENAME CONSTRAINT "
                "code_references_rows_pkey TO code_references_pkey",
                "CREATE INDEX code_references_name ON code_references "
                "(name, file_id, line)",
                "CREATE INDEX code_references_file ON code_references (file_id)",
            ],
        ),
        migrations.SeparateDatabaseAndState(
            state_operations=[migrations.DeleteModel(name="CodeReference")]
        ),
        migrations.CreateModel(
            name="CodeReference",
            fields=[
                (
                    "pk",
                    models.CompositePrimaryKey(
                        "name",
                        "file",
                        blank=True,
                        editable=False,
                        primary_key=True,
                        serialize=False,
                    ),
                ),
                (
                    "file",
                    models.ForeignKey(
                        db_constraint=False,
                        db_index=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="references",
                        to="indexing.codefile",
                    ),
                ),
                ("name", models.TextField()),
                (
                    "lines",
                    django.contrib.postgres.fields.ArrayField(
                        base_field=models.IntegerField(), size=None
                    ),
                ),
                (
                    "columns",
                    django.contrib.postgres.fields.ArrayField(
                        base_field=models.IntegerField(), size=None
                    ),
                ),
                ("kinds", models.TextField()),
                (
                    "containers",
                    django.contrib.postgres.fields.ArrayField(
                        base_field=models.TextField(null=True), size=None
                    ),
                ),
            ],
            options={
                "db_table": "code_references",
                "indexes": [models.Index(fields=["file"], name="code_references_file")],
            },
        ),
        migrations.RunSQL(
            sql=[
                "INSERT INTO code_references "
                "(name, file_id, lines, columns, kinds, containers) "
                f"SELECT name, file_id, array_agg(line {_ORDER}), "
                f'array_agg("column" {_ORDER}), '
                f"string_agg({_KIND_LETTER}, '' {_ORDER}), "
                f"array_agg(container {_ORDER}) "
                "FROM code_references_rows GROUP BY name, file_id",
                "DROP TABLE code_references_rows",
            ],
            reverse_sql=[
                "CREATE TABLE code_references_rows (id bigint NOT NULL "
                "GENERATED BY DEFAULT AS IDENTITY, name text NOT NULL, "
                'line integer NOT NULL, "column" integer NOT NULL, '
                "kind varchar(16) NOT NULL, container text NULL, "
                "file_id bigint NOT NULL, "
                "CONSTRAINT code_references_rows_pkey PRIMARY KEY (id))",
                "INSERT INTO code_references_rows "
                '(name, line, "column", kind, container, file_id) '
                f"SELECT r.name, u.line, u.col, {_LETTER_KIND}, u.container, "
                "r.file_id FROM code_references r CROSS JOIN LATERAL unnest("
                "r.lines, r.columns, string_to_array(r.kinds, NULL), r.containers"
                ") AS u(line, col, letter, container)",
            ],
        ),
        migrations.AlterField(
            model_name="codesymbol",
            name="file",
            field=models.ForeignKey(
                db_constraint=False,
                db_index=False,
                on_delete=django.db.models.deletion.CASCADE,
                related_name="symbols",
                to="indexing.codefile",
            ),
        ),
        migrations.AlterField(
            model_name="codesymbol",
            name="repository",
            field=models.ForeignKey(
                db_constraint=False,
                on_delete=django.db.models.deletion.CASCADE,
                related_name="symbols",
                to="indexing.repository",
            ),
        ),
        # An index run ends with ANALYZE: no query filters on these columns,
        # and sampling them took most of its time (arrays: 0.2 s of 0.24 on
        # Django; signatures and docs a third of code_symbols'). The trigram
        # index's lower(name) is sampled for code_symbols_name_lower already,
        # and `%` does not estimate from it (code_symbols 0.06 -> 0.04 s).
        migrations.RunSQL(
            sql=[
                f"ALTER TABLE {table} ALTER COLUMN {column} SET STATISTICS 0"
                for table, column in _UNSAMPLED
            ]
            + ["ALTER INDEX code_symbols_name_trgm ALTER COLUMN 1 SET STATISTICS 0"],
            reverse_sql=[
                f"ALTER TABLE {table} ALTER COLUMN {column} SET STATISTICS -1"
                for table, column in _UNSAMPLED
            ]
            + ["ALTER INDEX code_symbols_name_trgm ALTER COLUMN 1 SET STATISTICS -1"],
        ),
    ]
