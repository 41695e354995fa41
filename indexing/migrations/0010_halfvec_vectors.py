"""Store chunk vectors as halfvec: 2-byte floats, half the bytes of a vector.

MiniLM's unit vectors need no more than half precision to rank: the cosine
of a float16 copy to its float32 original is above 0.9999, and
bench/quality.py's MRR@10 moves by less than 0.005 (README, "Operating at
scale"). Halving the vectors halves the HNSW graph the index keeps in memory
and the bytes every distance reads, which is what a million chunks are made
of: 1M x 384-d is 1.5 GB as vectors, 0.77 GB as halfvec.

The HNSW index is dropped before the column is rewritten and built again
over `embedding::halfvec(d)` for the project's recorded dimension, so the
migration costs a project one index build. Reversible: back to vector, with
the index rebuilt over `embedding::vector(d)`.
"""

import pgvector.django
from django.db import migrations

_REBUILD = """
DO $$
DECLARE
    old record;
    dim integer;
BEGIN
    FOR old IN SELECT indexname FROM pg_indexes
        WHERE tablename = 'code_chunks' AND indexname LIKE 'code_chunks_embedding_hnsw_%'
    LOOP
        EXECUTE format('DROP INDEX %I', old.indexname);
    END LOOP;
    ALTER TABLE code_chunks ALTER COLUMN embedding TYPE {kind} USING embedding::{kind};
    SELECT dimension INTO dim FROM embedding_space ORDER BY id LIMIT 1;
    IF dim IS NOT NULL AND EXISTS (
        SELECT 1 FROM code_chunks WHERE embedding IS NOT NULL
    ) THEN
        EXECUTE format(
            'CREATE INDEX code_chunks_embedding_hnsw_%s ON code_chunks USING hnsw '
            '((embedding::{kind}(%s)) {kind}_cosine_ops) '
            'WITH (m = 16, ef_construction = 64)',
            dim, dim);
    END IF;
END $$;
"""


class Migration(migrations.Migration):
    dependencies = [("indexing", "0009_job_embedding_progress")]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[
                migrations.RunSQL(
                    _REBUILD.format(kind="halfvec"),
                    reverse_sql=_REBUILD.format(kind="vector"),
                )
            ],
            state_operations=[
                migrations.AlterField(
                    model_name="codechunk",
                    name="embedding",
                    field=pgvector.django.HalfVectorField(blank=True, null=True),
                )
            ],
        )
    ]
