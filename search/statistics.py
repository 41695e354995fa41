"""Search statistics kept in each project database.

Every search adds one upsert: a counter per mode and a bounded ring of the
latest latencies, from which percentiles are computed. Kept in the project's
own database, the figures survive restarts and travel with moves and backups.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from django.db import DatabaseError, transaction

from registry.databases import project_connection

logger = logging.getLogger("codebase_mcp.search")

# Latencies kept per search mode; percentiles describe the most recent ones.
SEARCH_LATENCY_RING = 1000

# A statistic lost in a crash is no loss; a search waiting for the WAL flush
# of its statistics is (a few milliseconds per search): commit asynchronously.
_RECORD_SQL = """
WITH quiet AS (SELECT set_config('synchronous_commit', 'off', true)),
counter AS (
    INSERT INTO search_counters AS c (mode, queries, total_ms, updated_at)
    SELECT %(mode)s, 1, %(ms)s, now() FROM quiet
    ON CONFLICT (mode) DO UPDATE SET
        queries = c.queries + 1,
        total_ms = c.total_ms + EXCLUDED.total_ms,
        updated_at = EXCLUDED.updated_at
    RETURNING queries
)
INSERT INTO search_latencies AS l (mode, slot, latency_ms, recorded_at)
SELECT %(mode)s, (queries - 1) %% %(ring)s, %(ms)s, now() FROM counter
ON CONFLICT (mode, slot) DO UPDATE SET
    latency_ms = EXCLUDED.latency_ms,
    recorded_at = EXCLUDED.recorded_at
"""

_record_warned: set[str] = set()


def search_stat_record(*, alias: str, latency_ms: float, mode: str) -> None:
    """Count one search of a project and keep its latency in the ring.

    One statement per search. Never raises a database error: a project
    database migrated before search statistics existed, or a hiccup, must not
    fail the search being measured.
    """
    connection = project_connection(database_name=alias)
    params = {
        "mode": str(mode)[:32],
        "ms": float(latency_ms),
        "ring": SEARCH_LATENCY_RING,
    }
    try:
        with transaction.atomic(using=alias), connection.cursor() as cursor:
            cursor.execute(_RECORD_SQL, params)
    except DatabaseError as exc:
        if alias not in _record_warned:
            _record_warned.add(alias)
            logger.warning(
                "search statistics of %s are not recorded (%s); bring its schema "
                "up to date with `manage.py migrate_projects`",
                alias,
                str(exc).splitlines()[0] if str(exc) else type(exc).__name__,
            )


@dataclass
class SearchStats:
    """Searches served per mode and the latency percentiles of the ring."""

    queries_by_mode: dict[str, int] = field(default_factory=dict)
    total_ms: float = 0.0
    samples: int = 0
    p50_ms: float | None = None
    p95_ms: float | None = None


def search_stats_read(*, alias: str) -> SearchStats:
    """Return a project's search statistics; empty before any were recorded."""
    with project_connection(database_name=alias).cursor() as cursor:
        # A database migrated before search statistics existed has no tables
        # for them yet: report no searches rather than fail.
        cursor.execute("SELECT to_regclass('search_latencies') IS NOT NULL")
        if not cursor.fetchone()[0]:
            return SearchStats()
        cursor.execute(
            "SELECT mode, queries, total_ms FROM search_counters ORDER BY mode"
        )
        counters = cursor.fetchall()
        cursor.execute(
            "SELECT count(*), "
            "percentile_cont(0.5) WITHIN GROUP (ORDER BY latency_ms), "
            "percentile_cont(0.95) WITHIN GROUP (ORDER BY latency_ms) "
            "FROM search_latencies"
        )
        samples, p50, p95 = cursor.fetchone()
    return SearchStats(
        queries_by_mode={mode: queries for mode, queries, _ in counters},
        total_ms=sum(total for _, _, total in counters),
        samples=samples,
        p50_ms=p50,
        p95_ms=p95,
    )
