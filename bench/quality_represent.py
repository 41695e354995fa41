"""Try other texts for the vector of a long chunk, on bench/quality.py's index.

Run: cd /work/main && CODEBASE_MCP_HOME=/tmp/cbq .venv/bin/python \\
         bench/quality_represent.py --project qbench --representation NAME
     then bench/quality.py --project qbench (it reuses the index as it is),
     and --restore to put the indexed vectors back.

The model reads 128 tokens of a chunk (its name's words, then its code); a
long function's vector thus sees its signature and first lines only. This
script rewrites the stored vectors of the chunks longer than that with
another representation, leaving every other chunk's vector as indexed, so
`quality.py` measures the representation through the real search (HNSW,
fusion, the ranking layer) on the same candidates otherwise:

- `calls`: the name's words, the chunk's first line (its signature), then
  the words of the identifiers the body calls (`name(`), each once, in order;
- `head-calls`: the first half of the 128 tokens of code as indexed, then the
  called identifiers' words of the rest;
- `windows`: the mean of the vectors of the chunk's consecutive 128-token
  windows (each prefixed by the name's words), one vector for the whole body.

The indexed vectors are saved (once) beside the corpus before the first
rewrite; `--restore` writes them back.
"""

from __future__ import annotations

import argparse
import re
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from machine import django_setup, machine_description

REPRESENTATIONS = ("calls", "head-calls", "windows")
# Words that open a parenthesis without being a call.
_NOT_CALLS = frozenset(
    "if for while switch catch return function func elif and or not in with "
    "typeof sizeof new await yield print assert lambda def class".split()
)
_CALL = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)\s*\(")


def called_words(*, code: str) -> str:
    """Return the words of the identifiers `code` calls, each name once, in order."""
    from indexing.terms import symbol_words

    seen: dict[str, None] = {}
    for name in _CALL.findall(code):
        if name.lower() not in _NOT_CALLS:
            seen.setdefault(name, None)
    return " ".join(symbol_words(symbol=name) for name in seen)


def _chunks(*, alias: str) -> list[tuple[int, str, str | None]]:
    from indexing.models import CodeChunk

    return list(
        CodeChunk.objects.using(alias)
        .filter(embedding__isnull=False)
        .order_by("id")
        .values_list("id", "content", "symbol")
    )


def _vectors_write(*, alias: str, ids: list[int], vectors: np.ndarray) -> None:
    from indexing.models import CodeChunk

    CodeChunk.objects.using(alias).bulk_update(
        [
            CodeChunk(id=chunk_id, embedding=vector.tolist())
            for chunk_id, vector in zip(ids, vectors, strict=True)
        ],
        ["embedding"],
        batch_size=500,
    )


def _texts(
    *, representation: str, content: str, ends: Callable[[str], list[int]]
) -> list[str]:
    """Return the text(s) whose vectors stand for one long chunk's code.

    `ends` gives the character offset where each of a text's tokens ends.
    """
    lines = content.splitlines()
    if representation == "calls":
        return [f"{lines[0] if lines else ''}\n{called_words(code=content)}"]
    offsets = ends(content)
    if representation == "head-calls":
        cut = offsets[min(63, len(offsets) - 1)]
        return [f"{content[:cut]}\n{called_words(code=content[cut:])}"]
    starts = [0] + [offsets[i] for i in range(119, len(offsets) - 1, 120)]
    bounds = [*starts[1:], len(content)]
    return [
        content[a:b]
        for a, b in zip(starts, bounds, strict=True)
        if content[a:b].strip()
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--project", required=True, help="quality.py's kept project")
    parser.add_argument("--representation", choices=REPRESENTATIONS)
    parser.add_argument(
        "--restore", action="store_true", help="put the indexed vectors back"
    )
    parser.add_argument(
        "--long-tokens",
        type=int,
        default=128,
        help="a chunk whose name words + code exceed this many tokens is long",
    )
    args = parser.parse_args()
    if bool(args.representation) == args.restore:
        sys.exit("give one of --representation NAME or --restore")

    django_setup()
    from django.conf import settings
    from tokenizers import Tokenizer

    from indexing.embedders.minilm import tokenizer_file
    from indexing.selectors import space_embedder_get
    from indexing.services import chunk_vectors
    from indexing.terms import symbol_words
    from registry.selectors import project_find
    from registry.services import project_alias

    print(machine_description())
    project = project_find(reference=args.project)
    if project is None:
        sys.exit(f"no project {args.project!r}: run bench/quality.py --project first")
    alias = project_alias(project=project)
    saved = Path(settings.CODEBASE_MCP_HOME) / f"represent-{args.project}.npz"
    chunks = _chunks(alias=alias)
    if args.restore:
        if not saved.exists():
            sys.exit(f"nothing to restore: {saved} does not exist")
        kept = np.load(saved)
        _vectors_write(alias=alias, ids=kept["ids"].tolist(), vectors=kept["vectors"])
        print(f"restored {len(kept['ids'])} vectors from {saved}")
        return

    from quality_rank import vectors_load

    if not saved.exists():
        stored = vectors_load(project=project)
        ids = sorted(stored)
        np.savez(saved, ids=np.array(ids), vectors=np.stack([stored[i] for i in ids]))
        print(f"saved the indexed vectors of {len(ids)} chunks to {saved}")

    tokenizer = Tokenizer.from_str(tokenizer_file().read_text())
    tokenizer.no_padding()
    tokenizer.no_truncation()

    def ends(text: str) -> list[int]:
        return [b for _, b in tokenizer.encode(text, add_special_tokens=False).offsets]

    long_chunks = [
        (chunk_id, content, symbol)
        for chunk_id, content, symbol in chunks
        if len(ends(f"{symbol_words(symbol=symbol)}\n{content}")) > args.long_tokens
    ]
    print(
        f"{len(long_chunks)} of {len(chunks)} chunks are longer than "
        f"{args.long_tokens} tokens; rewriting them as {args.representation!r}"
    )
    if not long_chunks:
        sys.exit("no chunk is that long: nothing to rewrite")
    # The project's own model (it may be kept on other shipped weights).
    embedder = space_embedder_get(alias=alias)
    started = time.monotonic()
    ids, vectors = [], []
    for chunk_id, content, symbol in long_chunks:
        texts = _texts(representation=args.representation, content=content, ends=ends)
        rows = chunk_vectors(
            embedder=embedder, contents=texts, symbols=[symbol] * len(texts)
        )
        vector = rows.mean(axis=0)
        ids.append(chunk_id)
        vectors.append(vector / np.linalg.norm(vector))
    _vectors_write(alias=alias, ids=ids, vectors=np.stack(vectors))
    print(f"wrote {len(ids)} vectors in {time.monotonic() - started:.0f} s")


if __name__ == "__main__":
    main()
