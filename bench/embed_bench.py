"""Measure MiniLM embedding throughput (chunks/s) and what each speed-up costs.

Run: .venv/bin/python bench/embed_bench.py [--chunks 256] [--rounds 3]
     [--only NAME ...] [--no-quality] [--quick]

Chunks are real code: the .py files of the installed Django cut into 40-line
pieces of at most 1,500 characters. Configurations run interleaved, round
after round, so a burst of load on a shared machine hits all of them; best
and median of the rounds are printed. Quality is measured two ways against
the reference (the file's own fp32 graph, 256 tokens): cosine agreement of the
vectors, and a retrieval test where each Django docstring must find its own
function (docstring removed from the code) among the others.
"""

from __future__ import annotations

import argparse
import ast
import json
import multiprocessing
import os
import platform
import random
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import django
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from indexing.embedders import minilm  # noqa: E402
from indexing.embedders.minilm import MiniLMEmbedder  # noqa: E402

DJANGO_DIR = Path(django.__file__).resolve().parent
PIECE_LINES = 40
PIECE_CHARS = 1500


# --- Data ----------------------------------------------------------------------


def python_files() -> list[Path]:
    """Return the installed Django's .py files in a stable order."""
    return sorted(DJANGO_DIR.rglob("*.py"))


def code_chunks(count: int, *, seed: int = 0) -> list[str]:
    """Cut Django's sources into 40-line pieces of at most 1,500 characters.

    A piece over the limit drops whole lines from its end; pieces under 200
    characters (license headers, tails of files) are skipped as unrealistic.
    """
    pieces = []
    for path in python_files():
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
        for start in range(0, len(lines), PIECE_LINES):
            window = lines[start : start + PIECE_LINES]
            while window and len("\n".join(window)) > PIECE_CHARS:
                window.pop()
            text = "\n".join(window)
            if len(text) >= 200:
                pieces.append(text)
    random.Random(seed).shuffle(pieces)
    return pieces[:count]


def docstring_pairs(count: int, *, seed: int = 1) -> list[tuple[str, str]]:
    """Return (first docstring paragraph, function code without it) pairs."""
    pairs = []
    for path in python_files():
        source = path.read_text(encoding="utf-8", errors="replace")
        try:
            tree = ast.parse(source)
        except SyntaxError:
            continue
        lines = source.splitlines()
        for node in ast.walk(tree):
            if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            docstring = ast.get_docstring(node)
            if not docstring or len(docstring) < 40:
                continue
            first = node.body[0]
            body = lines[node.lineno - 1 : first.lineno - 1]
            body += lines[first.end_lineno : node.end_lineno]
            code = "\n".join(body)
            if len(code) >= 300:
                query = " ".join(docstring.split("\n\n")[0].split())
                pairs.append((query, code[:PIECE_CHARS]))
    random.Random(seed).shuffle(pairs)
    return pairs[:count]


# --- Machine ---------------------------------------------------------------------


def machine_lines() -> list[str]:
    """Describe the CPU, the libraries and the current load."""
    model = platform.processor() or "unknown"
    flags: set[str] = set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name":
                model = value.strip()
            elif key.strip() == "flags" and not flags:
                flags = set(value.split())
    except OSError:
        pass
    simd = [f for f in ("avx2", "avx512f", "avx512_vnni", "avx_vnni") if f in flags]
    import onnxruntime
    import tokenizers

    return [
        f"cpu: {model}, os.cpu_count()={os.cpu_count()}, simd: {' '.join(simd)}",
        f"python {platform.python_version()}, onnxruntime {onnxruntime.__version__}, "
        f"tokenizers {tokenizers.__version__}, numpy {np.__version__}",
        f"load average at start: {' '.join(f'{x:.2f}' for x in os.getloadavg())}",
    ]


# --- Configurations ---------------------------------------------------------------


Embed = Callable[[Sequence[str]], np.ndarray]


@dataclass
class Config:
    name: str
    make: Callable[[], Embed]
    note: str = ""


def naive(max_tokens: int, batch_size: int, *, length_sorted: bool = False) -> Embed:
    """Return the straightforward pipeline: file graph, default session.

    With the tokenizer file's own settings (truncate and pad to 128) and a
    batch of 32 this is the "~46 chunks/s" starting point.
    """
    import onnxruntime
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(minilm.tokenizer_file()))
    tokenizer.enable_truncation(max_length=max_tokens)
    if max_tokens != 128:
        tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")
    session = onnxruntime.InferenceSession(
        str(minilm.model_file()), providers=["CPUExecutionProvider"]
    )

    def embed(texts: Sequence[str]) -> np.ndarray:
        order = list(range(len(texts)))
        if length_sorted:
            order.sort(key=lambda i: len(texts[i]), reverse=True)
        result = np.empty((len(texts), minilm.DIMENSION), dtype=np.float32)
        for start in range(0, len(order), batch_size):
            positions = order[start : start + batch_size]
            encodings = tokenizer.encode_batch([texts[i] for i in positions])
            ids = np.array([e.ids for e in encodings], dtype=np.int64)
            mask = np.array([e.attention_mask for e in encodings], dtype=np.int64)
            hidden = session.run(
                None,
                {
                    "input_ids": ids,
                    "attention_mask": mask,
                    "token_type_ids": np.zeros_like(ids),
                },
            )[0]
            weights = mask[:, :, None].astype(np.float32)
            pooled = (hidden * weights).sum(axis=1) / weights.sum(axis=1)
            pooled /= np.linalg.norm(pooled, axis=1, keepdims=True)
            result[positions] = pooled
        return result

    return embed


class LevelEmbedder(MiniLMEmbedder):
    """MiniLMEmbedder with another graph optimisation level or session knobs."""

    def __init__(
        self,
        *,
        level: str = "ORT_ENABLE_ALL",
        disabled: Sequence[str] = ("SkipLayerNormFusion",),
        spinning: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.level = level
        self.disabled = list(disabled)
        self.spinning = spinning

    def _session_create(self, onnxruntime: Any, model_bytes: bytes) -> Any:
        options = onnxruntime.SessionOptions()
        options.graph_optimization_level = getattr(
            onnxruntime.GraphOptimizationLevel, self.level
        )
        options.intra_op_num_threads = self.intra_op_threads
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        if self.spinning is not None:
            options.add_session_config_entry(
                "session.intra_op.allow_spinning", self.spinning
            )
        return onnxruntime.InferenceSession(
            model_bytes,
            sess_options=options,
            providers=["CPUExecutionProvider"],
            disabled_optimizers=self.disabled,
        )


class SessionPerThreadEmbedder(MiniLMEmbedder):
    """MiniLMEmbedder with one session per worker thread instead of a shared one."""

    def _session_create(self, onnxruntime: Any, model_bytes: bytes) -> Any:
        self._session_args = (onnxruntime, model_bytes)
        self._local = threading.local()
        return super()._session_create(onnxruntime, model_bytes)

    def _run(self, feeds: dict[str, np.ndarray]) -> np.ndarray:
        session = getattr(self._local, "session", None)
        if session is None:
            session = super()._session_create(*self._session_args)
            self._local.session = session
        return session.run(None, feeds)[0]


def _process_init(kwargs: dict[str, Any]) -> None:
    global _PROCESS_EMBEDDER
    _PROCESS_EMBEDDER = MiniLMEmbedder(**kwargs)
    _PROCESS_EMBEDDER.embed_documents(["warm up"])


def _process_embed(texts: list[str]) -> np.ndarray:
    return _PROCESS_EMBEDDER.embed_documents(texts)


def processes(count: int, **kwargs: Any) -> Embed:
    """Split each call over `count` processes of one single-threaded embedder."""
    context = multiprocessing.get_context("spawn")
    pool = context.Pool(count, initializer=_process_init, initargs=(kwargs,))

    def embed(texts: Sequence[str]) -> np.ndarray:
        # Interleave so both halves hold the same mix of lengths.
        parts = [list(texts[i::count]) for i in range(count)]
        results = pool.map(_process_embed, parts)
        out = np.empty((len(texts), minilm.DIMENSION), dtype=np.float32)
        for i, part in enumerate(results):
            out[i::count] = part
        return out

    return embed


def configs(cores: int) -> list[Config]:
    """Return every configuration the bench compares."""

    def embedder(**kwargs: Any) -> Callable[[], Embed]:
        return lambda: MiniLMEmbedder(**kwargs).embed_documents

    def leveled(**kwargs: Any) -> Callable[[], Embed]:
        return lambda: LevelEmbedder(**kwargs).embed_documents

    return [
        Config("naive-128", lambda: naive(128, 32), "file graph, tokenizer defaults"),
        Config("naive-256", lambda: naive(256, 32), "file graph, pad to batch"),
        Config(
            "naive-256-sorted",
            lambda: naive(256, 32, length_sorted=True),
            "+ length-sorted batches",
        ),
        Config("naive-256-b1", lambda: naive(256, 1), "batch 1"),
        Config(
            "orig-fp32-256-2x1",
            embedder(graph="original", activations="fp32", max_tokens=256),
            "file graph, 2 concurrent 1-thread runs",
        ),
        Config(
            "fused-fp32-256-2x1",
            embedder(activations="fp32", max_tokens=256),
            "fused graph, fp32",
        ),
        Config(
            "fused-fp32-256-b8",
            embedder(activations="fp32", max_tokens=256, batch_size=8),
            "fused fp32, length-sorted batches of 8",
        ),
        Config(
            "fused-int8-256-2x1",
            embedder(max_tokens=256),
            "fused graph, int8 activations",
        ),
        Config(
            "fused-fp32-128-2x1",
            embedder(activations="fp32"),
            "fused fp32, 128 tokens",
        ),
        Config("default", embedder(), "fused int8, 128 tokens, 2x1 (the default)"),
        Config(
            "int8-128-1x2",
            embedder(intra_op_threads=cores),
            f"one run at a time on {cores} intra-op threads",
        ),
        Config("int8-128-1x1", embedder(threads=1), "single core"),
        Config(
            "int8-128-3x1",
            embedder(threads=cores + 1),
            "one more worker than cores",
        ),
        Config(
            "int8-128-own-sessions",
            lambda: SessionPerThreadEmbedder().embed_documents,
            "one session per worker thread",
        ),
        Config(
            "int8-128-2-processes",
            lambda: processes(cores, threads=1),
            f"{cores} processes x 1 thread",
        ),
        Config(
            "int8-128-EXTENDED",
            leveled(level="ORT_ENABLE_EXTENDED"),
            "graph optimisation EXTENDED",
        ),
        Config(
            "int8-128-BASIC",
            leveled(level="ORT_ENABLE_BASIC"),
            "graph optimisation BASIC",
        ),
        Config(
            "int8-128-SkipLN-fused",
            leveled(disabled=()),
            "ORT's SkipLayerNorm fusion left on",
        ),
        Config(
            "int8-128-1x2-nospin",
            leveled(intra_op_threads=cores, spinning="0"),
            "1x2 without thread spinning",
        ),
    ]


# --- Measurement -----------------------------------------------------------------


@dataclass
class Timing:
    """Throughput of one configuration over the rounds."""

    wall: list[float] = field(default_factory=list)  # chunks per second
    cpu: list[float] = field(default_factory=list)  # chunks per CPU-second

    def line(self) -> str:
        # Best-of is the figure least disturbed by other load on a shared
        # machine; chunks per CPU-second shows the cost even under such load.
        cpu = f"{max(self.cpu):7.1f}" if self.cpu else "    n/a"
        return f"{max(self.wall):7.1f} {statistics.median(self.wall):7.1f} {cpu}"


def measure(
    chosen: list[Config], chunks: list[str], rounds: int
) -> tuple[dict[str, Timing], dict[str, np.ndarray]]:
    """Time every config round after round; return timings and first vectors."""
    ready: dict[str, Embed] = {}
    for config in chosen:
        embed = config.make()
        embed(chunks[:4])  # load and warm up outside the timing
        ready[config.name] = embed
    timings = {c.name: Timing() for c in chosen}
    vectors: dict[str, np.ndarray] = {}
    for round_number in range(rounds):
        for config in chosen:
            cpu_started = time.process_time()
            started = time.perf_counter()
            result = ready[config.name](chunks)
            elapsed = time.perf_counter() - started
            cpu = time.process_time() - cpu_started
            timing = timings[config.name]
            timing.wall.append(len(chunks) / elapsed)
            if not config.name.endswith("processes"):  # children's CPU is not ours
                timing.cpu.append(len(chunks) / cpu)
            vectors.setdefault(config.name, result)
            print(
                f"  round {round_number + 1} {config.name:24s} "
                f"{len(chunks) / elapsed:7.1f} chunks/s",
                file=sys.stderr,
                flush=True,
            )
    return timings, vectors


def env_experiment(chunks: int, rounds: int) -> list[str]:
    """Run the default config in child processes with and without BLAS/OMP caps."""
    lines = []
    for label, extra in (
        ("default, no thread env", {}),
        (
            "default, OMP/OPENBLAS/MKL_NUM_THREADS=1",
            {
                "OMP_NUM_THREADS": "1",
                "OPENBLAS_NUM_THREADS": "1",
                "MKL_NUM_THREADS": "1",
            },
        ),
    ):
        env = {
            k: v for k, v in os.environ.items() if not k.endswith("_NUM_THREADS")
        } | extra
        output = subprocess.run(
            [sys.executable, __file__, "--child", str(chunks), str(rounds)],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        speeds = json.loads(output.strip().splitlines()[-1])
        lines.append(
            f"{label:44s} best {max(speeds):7.1f}  median "
            f"{statistics.median(speeds):7.1f}"
        )
    return lines


def child(chunks: int, rounds: int) -> None:
    """Entry point of env_experiment's child: print the default's speeds as JSON."""
    default = Config("default", lambda: MiniLMEmbedder().embed_documents)
    timings, _ = measure([default], code_chunks(chunks), rounds)
    print(json.dumps(timings["default"].wall))


def retrieval(pairs: list[tuple[str, str]], embedder: MiniLMEmbedder) -> str:
    """Return MRR and recall@1/@10 of docstring -> own function."""
    queries = np.stack([embedder.embed_query(q) for q, _ in pairs])
    documents = embedder.embed_documents([c for _, c in pairs])
    scores = queries @ documents.T
    ranks = (scores > scores.diagonal()[:, None]).sum(axis=1) + 1
    return (
        f"MRR {np.mean(1 / ranks):.3f}  R@1 {np.mean(ranks == 1):.3f}  "
        f"R@10 {np.mean(ranks <= 10):.3f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chunks", type=int, default=256)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--pairs", type=int, default=400)
    parser.add_argument("--only", nargs="*", help="config names to run")
    parser.add_argument("--no-quality", action="store_true")
    parser.add_argument("--no-env", action="store_true")
    parser.add_argument("--quick", action="store_true", help="64 chunks, 1 round")
    parser.add_argument("--child", nargs=2, type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(*args.child)
        return
    if args.quick:
        args.chunks, args.rounds, args.pairs = 64, 1, 100

    cores = os.cpu_count() or 1
    for line in machine_lines():
        print(line)
    chunks = code_chunks(args.chunks)
    print(
        f"data: {len(chunks)} chunks of Django {DJANGO_DIR}, mean "
        f"{statistics.mean(map(len, chunks)):.0f} chars; {args.rounds} rounds"
    )
    chosen = [c for c in configs(cores) if not args.only or c.name in args.only]
    timings, vectors = measure(chosen, chunks, args.rounds)

    reference = MiniLMEmbedder(
        graph="original", activations="fp32", max_tokens=256
    ).embed_documents(chunks)
    print()
    print(
        f"{'config':24s} {'best':>7s} {'median':>7s} {'per-cpu':>7s}  "
        "cos vs ref mean/min  note"
    )
    for config in chosen:
        agreement = (vectors[config.name] * reference).sum(axis=1)
        print(
            f"{config.name:24s} {timings[config.name].line()}  "
            f"{agreement.mean():.4f} / {agreement.min():.4f}  {config.note}"
        )
    print(
        "(chunks/s: best and median round, and chunks per CPU-second; "
        "ref = file graph, fp32, 256 tokens)"
    )
    print(f"load average at end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")

    if not args.no_env and not args.only:
        print()
        for line in env_experiment(args.chunks, args.rounds):
            print(line)

    if not args.no_quality:
        pairs = docstring_pairs(args.pairs)
        print()
        print(f"retrieval, {len(pairs)} Django docstrings -> their function:")
        for activations in ("fp32", "int8"):
            for max_tokens in (256, 128):
                embedder = MiniLMEmbedder(
                    activations=activations, max_tokens=max_tokens
                )
                print(
                    f"  {activations} {max_tokens:3d} tokens: "
                    f"{retrieval(pairs, embedder)}"
                )


if __name__ == "__main__":
    main()
