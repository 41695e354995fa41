"""Indexing models.

`Repository`, `CodeFile`, `CodeChunk`, `EmbeddingSpace`, the full-text term
statistics (`SearchTerm`, `SearchTermTotals`) and the search statistics
(`SearchCounter`, `SearchLatency`) live in each project's own
database (always queried with `.using(alias)`); `IndexJob` lives in the
registry so that any process can follow a job of any project.
"""

import uuid

from django.contrib.postgres.fields import ArrayField
from django.contrib.postgres.indexes import GinIndex, OpClass
from django.contrib.postgres.search import SearchVectorField
from django.db import models
from django.db.models.expressions import RawSQL, Value
from django.db.models.functions import Left, Length, Lower, Replace
from pgvector.django import HalfVectorField

# Header terms (symbol and path, identifiers split into words) weigh more than
# the body (code plus its split identifiers). Built by PostgreSQL itself so
# every writer gets the same vector. Dots become spaces first: PostgreSQL's
# parser reads `self.headers.get` as one host name, which would hide every
# attribute and method a chunk uses from keyword search.
SEARCH_VECTOR_SQL = (
    "setweight(to_tsvector('english'::regconfig, header_terms), 'A') || "
    "setweight(to_tsvector('english'::regconfig, "
    "translate(content, '.', ' ') || ' ' || body_terms), 'B')"
)


class Repository(models.Model):
    """A directory tree indexed into a project."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    path = models.TextField(unique=True)
    name = models.CharField(max_length=255)
    created_at = models.DateTimeField(auto_now_add=True)
    last_indexed_at = models.DateTimeField(null=True, blank=True)
    # The git HEAD the last full run read ("" outside a git work tree, or
    # detached for the branch): what the index reflects, beside what is
    # checked out now.
    indexed_commit = models.CharField(max_length=64, blank=True, default="")
    indexed_branch = models.TextField(blank=True, default="")

    class Meta:
        db_table = "repositories"
        ordering = ["path"]

    def __str__(self) -> str:
        return self.path


class CodeFile(models.Model):
    """One indexed file; its chunks are replaced together when it changes."""

    repository = models.ForeignKey(
        Repository, on_delete=models.CASCADE, related_name="files"
    )
    relative_path = models.TextField()
    language = models.CharField(max_length=32)
    size_bytes = models.BigIntegerField()
    sha256 = models.CharField(max_length=64, db_index=True)
    mtime = models.FloatField()
    chunk_count = models.IntegerField(default=0)
    indexed_at = models.DateTimeField()
    # Which analysis (chunks only = 0; chunks, symbols and references = 1)
    # produced the file's rows; an index run redoes files of older analyses
    # even when their bytes did not change.
    analysis_version = models.SmallIntegerField(default=0)

    class Meta:
        db_table = "code_files"
        constraints = [
            models.UniqueConstraint(
                fields=["repository", "relative_path"], name="code_files_repo_path_uniq"
            )
        ]

    def __str__(self) -> str:
        return self.relative_path


class CodeChunk(models.Model):
    """A function, class or window of a file, with its vectors for search."""

    repository = models.ForeignKey(
        Repository, on_delete=models.CASCADE, related_name="chunks"
    )
    file = models.ForeignKey(CodeFile, on_delete=models.CASCADE, related_name="chunks")
    relative_path = models.TextField()
    language = models.CharField(max_length=32)
    kind = models.CharField(max_length=32)
    # NULL means "no symbol" (module chunks, windows); changing it to "" would
    # rewrite every project's chunks for nothing.
    symbol = models.TextField(null=True, blank=True)  # noqa: DJ001
    start_line = models.IntegerField()
    end_line = models.IntegerField()
    content = models.TextField()
    content_sha256 = models.CharField(max_length=64)
    header_terms = models.TextField(default="")
    body_terms = models.TextField(default="")
    # No fixed dimension: a project's model (and so its dimension) is recorded
    # in EmbeddingSpace, and the HNSW index is built on a cast to it. Half
    # precision (2-byte floats): migration 0010 says why.
    embedding = HalfVectorField(null=True, blank=True)
    search_vector = models.GeneratedField(
        expression=RawSQL(SEARCH_VECTOR_SQL, ()),
        output_field=SearchVectorField(),
        db_persist=True,
    )

    class Meta:
        db_table = "code_chunks"
        indexes = [
            GinIndex(fields=["search_vector"], name="code_chunks_search_gin"),
            models.Index(
                fields=["repository", "relative_path"], name="code_chunks_repo_path"
            ),
            models.Index(fields=["language"], name="code_chunks_language"),
            models.Index(fields=["content_sha256"], name="code_chunks_content_sha"),
            models.Index(
                fields=["id"],
                name="code_chunks_unembedded",
                condition=models.Q(embedding__isnull=True),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.relative_path}:{self.start_line}-{self.end_line}"


class CodeSymbol(models.Model):
    """A named definition of a file: function, class, method, constant...

    Written in the same transaction as its file's chunks, and replaced with
    them. `chunk_id` is the smallest chunk holding the definition's first line.
    No foreign-key constraints, as for references: their per-row checks took
    a third of the rows' writing, and rows only come and go with their file
    (the ORM still cascades). The (file, start_line) index serves lookups by
    file.
    """

    repository = models.ForeignKey(
        Repository,
        on_delete=models.CASCADE,
        related_name="symbols",
        db_constraint=False,
    )
    file = models.ForeignKey(
        CodeFile,
        on_delete=models.CASCADE,
        related_name="symbols",
        db_constraint=False,
        db_index=False,
    )
    relative_path = models.TextField()
    language = models.CharField(max_length=32)
    name = models.TextField()
    qualified_name = models.TextField()
    kind = models.CharField(max_length=32)
    parent = models.TextField(null=True, blank=True)  # noqa: DJ001 - no parent
    start_line = models.IntegerField()
    end_line = models.IntegerField()
    signature = models.TextField(default="")
    doc = models.TextField(default="")
    chunk_id = models.BigIntegerField(null=True, blank=True)

    class Meta:
        db_table = "code_symbols"
        indexes = [
            # text_pattern_ops: equality and `LIKE 'prefix%'` in any collation.
            models.Index(
                fields=["name"],
                name="code_symbols_name",
                opclasses=["text_pattern_ops"],
            ),
            models.Index(Lower("name"), name="code_symbols_name_lower"),
            # Misspellings: names of the same first letter and about the same
            # length are few, and their edit distance is cheap to compute.
            models.Index(
                Lower(Left("name", 1)), Length("name"), name="code_symbols_name_shape"
            ),
            models.Index(
                fields=["qualified_name"],
                name="code_symbols_qualified",
                opclasses=["text_pattern_ops"],
            ),
            # And code_symbols_name_trgm, made by migration 0004 in SQL (GIN
            # trigram on lower(name); Django cannot spell an operator class
            # on an expression index).
            models.Index(fields=["file", "start_line"], name="code_symbols_file"),
        ]

    def __str__(self) -> str:
        return f"{self.qualified_name} ({self.kind}) {self.relative_path}:{self.start_line}"


class CodeReference(models.Model):
    """The uses of one name in one file (calls, attributes, types, imports, names).

    One row per name and file, its uses in parallel arrays in file order:
    the most numerous facts of a project (about 15 per chunk) stored as a
    quarter as many rows, since each row and each of its index entries cost
    PostgreSQL more to write than its values. No repository column and no
    foreign-key constraint: a per-row constraint check cost more than the row
    itself, and a file's references are only ever written and deleted with
    the file (the ORM still cascades).
    """

    # Also the lookup by name: the files using a name, then their rows.
    pk = models.CompositePrimaryKey("name", "file")
    file = models.ForeignKey(
        CodeFile,
        on_delete=models.CASCADE,
        related_name="references",
        db_constraint=False,
        db_index=False,
    )
    name = models.TextField()
    lines = ArrayField(models.IntegerField())
    # 1-based, in characters.
    columns = ArrayField(models.IntegerField())
    # One letter per use (indexing.chunking.KIND_LETTERS): c call, a attribute,
    # t type, i import, n plain name.
    kinds = models.TextField()
    # Qualified name of the innermost definition around each use, if any.
    containers = ArrayField(models.TextField(null=True))

    class Meta:
        db_table = "code_references"
        indexes = [models.Index(fields=["file"], name="code_references_file")]

    def __str__(self) -> str:
        return f"{self.name} ({len(self.kinds)} uses)"


# Lines per row of code_text_segments (indexing.storing writes them).
SEGMENT_LINES = 200


class CodeTextSegment(models.Model):
    """A run of up to SEGMENT_LINES lines of an indexed file, as read at index time.

    grep_code's corpus. A file's text is its segments in line order joined
    by line breaks; they are written and replaced with the file's chunks.
    The GIN trigram indexes narrow a pattern to the segments holding its
    literals: trigrams must meet within 200 lines rather than anywhere in a
    file, and only those segments are rechecked and verified (`def get_de`
    on site-packages: 62 ms to recheck 878 whole files, 20 ms for 1,084
    segments). No match crosses a line, so none crosses a segment.
    """

    id = models.BigAutoField(primary_key=True)
    file = models.ForeignKey(
        CodeFile, on_delete=models.CASCADE, related_name="text_segments"
    )
    first_line = models.PositiveIntegerField()
    content = models.TextField()

    class Meta:
        db_table = "code_text_segments"
        constraints = [
            models.UniqueConstraint(
                fields=["file", "first_line"], name="code_text_segments_file_line"
            ),
        ]
        indexes = [
            GinIndex(
                fields=["content"],
                name="code_text_segments_trgm",
                opclasses=["gin_trgm_ops"],
            ),
            # Identifiers as one word each: `_` read as the letter q
            # (migration 0006 says why; search.grep.JOINED_TEXT uses it).
            GinIndex(
                OpClass(
                    Replace("content", Value("_"), Value("q")), name="gin_trgm_ops"
                ),
                name="code_text_segments_joined_trgm",
            ),
        ]

    def __str__(self) -> str:
        return f"lines {self.first_line}- of file {self.file_id}"


class SearchTerm(models.Model):
    """How many chunks of the project hold one full-text lexeme.

    Keyword search weighs a query word by how rare it is (BM25's IDF) and
    looks up candidates through the rarest words first. Statement triggers on
    `code_chunks` (migration 0003) keep the counts exact as chunks come and
    go; nothing in Python writes them.
    """

    lexeme = models.TextField(primary_key=True)
    chunks = models.IntegerField()

    class Meta:
        db_table = "search_terms"

    def __str__(self) -> str:
        return f"{self.lexeme} ({self.chunks} chunks)"


class SearchTermTotals(models.Model):
    """The one row of corpus totals BM25 needs: chunks and their summed lengths."""

    id = models.SmallIntegerField(primary_key=True, default=1)
    chunks = models.BigIntegerField(default=0)
    lexemes = models.BigIntegerField(default=0)

    class Meta:
        db_table = "search_term_totals"

    def __str__(self) -> str:
        return f"{self.chunks} chunks, {self.lexemes} lexemes"


class EmbeddingSpace(models.Model):
    """The one embedding model whose vectors a project database holds."""

    model_id = models.CharField(max_length=255)
    dimension = models.IntegerField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "embedding_space"

    def __str__(self) -> str:
        return f"{self.model_id} ({self.dimension}-d)"


class IndexJob(models.Model):
    """A durable record of one indexing run, visible from every process."""

    class Status(models.TextChoices):
        QUEUED = "queued"
        RUNNING = "running"
        COMPLETED = "completed"
        FAILED = "failed"
        CANCELLED = "cancelled"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    project = models.ForeignKey(
        "registry.Project", on_delete=models.CASCADE, related_name="index_jobs"
    )
    repo_path = models.TextField()
    force_reindex = models.BooleanField(default=False)
    status = models.CharField(
        max_length=16, choices=Status.choices, default=Status.QUEUED, db_index=True
    )
    phase = models.CharField(max_length=32, default="queued")
    files_total = models.IntegerField(default=0)
    files_done = models.IntegerField(default=0)
    files_indexed = models.IntegerField(default=0)
    files_unchanged = models.IntegerField(default=0)
    files_deleted = models.IntegerField(default=0)
    files_skipped = models.IntegerField(default=0)
    skipped_by_reason = models.JSONField(default=dict, blank=True)
    chunks_total = models.IntegerField(default=0)
    chunks_embedded = models.IntegerField(default=0)
    # Embedding phase: chunks to embed, chunks/s lately, seconds left at that
    # speed (null until known), and the vectors each worker (host:pid) wrote.
    chunks_to_embed = models.IntegerField(default=0)
    embed_rate = models.FloatField(default=0.0)
    eta_seconds = models.FloatField(null=True, blank=True)
    embedded_by = models.JSONField(default=dict, blank=True)
    error = models.TextField(blank=True, default="")
    worker = models.CharField(max_length=255, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "index_jobs"
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.repo_path} ({self.status})"


class SearchCounter(models.Model):
    """How many searches of one mode a project served, and their summed time."""

    mode = models.CharField(max_length=32, primary_key=True)
    queries = models.BigIntegerField(default=0)
    total_ms = models.FloatField(default=0.0)
    updated_at = models.DateTimeField()

    class Meta:
        db_table = "search_counters"

    def __str__(self) -> str:
        return f"{self.mode}: {self.queries} queries"


class SearchLatency(models.Model):
    """One slot of a per-mode ring of recent search latencies.

    Slot `n % ring size` of a mode is overwritten by its n-th search, so the
    table never holds more than (modes x ring size) rows however long a project
    is searched, and percentiles are read from the most recent searches.
    """

    pk = models.CompositePrimaryKey("mode", "slot")
    mode = models.CharField(max_length=32)
    slot = models.IntegerField()
    latency_ms = models.FloatField()
    recorded_at = models.DateTimeField()

    class Meta:
        db_table = "search_latencies"

    def __str__(self) -> str:
        return f"{self.mode}[{self.slot}] {self.latency_ms} ms"
