"""Count chunks per full-text lexeme, so keyword search can rank by BM25.

First the chunks' tsvector is rebuilt with dots read as spaces (see
SEARCH_VECTOR_SQL): a generated column's expression cannot be altered in
place everywhere, so the column and its GIN index are dropped and added,
which recomputes every chunk's vector.

Statement-level triggers with transition tables fold each INSERT or DELETE
on `code_chunks` into `search_terms` with one aggregate, so a COPY of
thousands of chunks costs one grouped upsert, not one per row. Chunks are
never updated in place (a changed file's chunks are deleted and written
anew), so there is no UPDATE trigger. Existing chunks are counted once here.
"""

import django.contrib.postgres.search
from django.db import migrations, models
from django.db.models.expressions import RawSQL

# indexing.models.SEARCH_VECTOR_SQL as of this migration (a migration must not
# change meaning when the model's expression changes later).
SEARCH_VECTOR_SQL = (
    "setweight(to_tsvector('english'::regconfig, header_terms), 'A') || "
    "setweight(to_tsvector('english'::regconfig, "
    "translate(content, '.', ' ') || ' ' || body_terms), 'B')"
)

# Two writers of one project (two repositories indexed at once) upsert the
# same lexemes; a transaction-scoped advisory lock makes them take turns
# instead of deadlocking on rows locked in different orders.
_LOCK = "PERFORM pg_advisory_xact_lock(1667396973, 1);"

_FUNCTIONS = f"""
CREATE FUNCTION search_terms_add() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    {_LOCK}
    INSERT INTO search_terms AS t (lexeme, chunks)
    SELECT u.lexeme, count(*)::integer
    FROM added a, unnest(a.search_vector) AS u
    GROUP BY u.lexeme ORDER BY u.lexeme
    ON CONFLICT (lexeme) DO UPDATE SET chunks = t.chunks + excluded.chunks;
    UPDATE search_term_totals
    SET chunks = search_term_totals.chunks + s.n,
        lexemes = search_term_totals.lexemes + s.l
    FROM (SELECT count(*) AS n, coalesce(sum(length(search_vector)), 0) AS l
          FROM added) AS s
    WHERE id = 1;
    RETURN NULL;
END $$;

CREATE FUNCTION search_terms_remove() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    {_LOCK}
    UPDATE search_terms AS t SET chunks = t.chunks - r.n
    FROM (SELECT u.lexeme, count(*)::integer AS n
          FROM removed a, unnest(a.search_vector) AS u
          GROUP BY u.lexeme ORDER BY u.lexeme) AS r
    WHERE t.lexeme = r.lexeme;
    DELETE FROM search_terms AS t
    USING (SELECT DISTINCT u.lexeme FROM removed a, unnest(a.search_vector) AS u) AS g
    WHERE t.lexeme = g.lexeme AND t.chunks <= 0;
    UPDATE search_term_totals
    SET chunks = search_term_totals.chunks - s.n,
        lexemes = search_term_totals.lexemes - s.l
    FROM (SELECT count(*) AS n, coalesce(sum(length(search_vector)), 0) AS l
          FROM removed) AS s
    WHERE id = 1;
    RETURN NULL;
END $$;

CREATE TRIGGER code_chunks_terms_add AFTER INSERT ON code_chunks
    REFERENCING NEW TABLE AS added
    FOR EACH STATEMENT EXECUTE FUNCTION search_terms_add();
CREATE TRIGGER code_chunks_terms_remove AFTER DELETE ON code_chunks
    REFERENCING OLD TABLE AS removed
    FOR EACH STATEMENT EXECUTE FUNCTION search_terms_remove();

INSERT INTO search_terms (lexeme, chunks)
SELECT word, ndoc FROM ts_stat('SELECT search_vector FROM code_chunks');
INSERT INTO search_term_totals (id, chunks, lexemes)
SELECT 1, count(*), coalesce(sum(length(search_vector)), 0) FROM code_chunks;
"""

_REVERSE = """
DROP TRIGGER IF EXISTS code_chunks_terms_add ON code_chunks;
DROP TRIGGER IF EXISTS code_chunks_terms_remove ON code_chunks;
DROP FUNCTION IF EXISTS search_terms_add();
DROP FUNCTION IF EXISTS search_terms_remove();
"""


class Migration(migrations.Migration):
    dependencies = [
        ("indexing", "0002_search_stats"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name="codechunk",
                    name="search_vector",
                    field=models.GeneratedField(
                        db_persist=True,
                        expression=RawSQL(SEARCH_VECTOR_SQL, ()),
                        output_field=django.contrib.postgres.search.SearchVectorField(),
                    ),
                ),
            ],
            database_operations=[
                migrations.RunSQL(
                    "ALTER TABLE code_chunks DROP COLUMN search_vector;"
                    " ALTER TABLE code_chunks ADD COLUMN search_vector tsvector"
                    f" GENERATED ALWAYS AS ({SEARCH_VECTOR_SQL}) STORED;"
                    " CREATE INDEX code_chunks_search_gin ON code_chunks"
                    " USING gin (search_vector);",
                    migrations.RunSQL.noop,
                ),
            ],
        ),
        migrations.CreateModel(
            name="SearchTerm",
            fields=[
                ("lexeme", models.TextField(primary_key=True, serialize=False)),
                ("chunks", models.IntegerField()),
            ],
            options={"db_table": "search_terms"},
        ),
        migrations.CreateModel(
            name="SearchTermTotals",
            fields=[
                (
                    "id",
                    models.SmallIntegerField(
                        default=1, primary_key=True, serialize=False
                    ),
                ),
                ("chunks", models.BigIntegerField(default=0)),
                ("lexemes", models.BigIntegerField(default=0)),
            ],
            options={"db_table": "search_term_totals"},
        ),
        migrations.RunSQL(_FUNCTIONS, _REVERSE),
    ]
