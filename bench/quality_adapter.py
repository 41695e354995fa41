"""Train a linear query adapter for the shipped model; measure it with quality.py.

Run: CODEBASE_MCP_HOME=/tmp/cbq .venv/bin/python bench/quality_adapter.py \\
         [--out FILE] [--epochs 8] [--pull 0.001] [--seed 7] [--no-names]
         [--balance]
     then bench/quality.py --project qbench --adapter FILE
Needs torch (pyproject.toml, [finetune]: `.venv/bin/pip install torch==2.13.0`).

Issue 17's lever 3: the index keeps its vectors; only a question's vector is
moved, by one 384 x 384 matrix, before it meets them (q' = W q, back to unit
length). An experiment, not a shipped path.

1. Pairs: bench/quality_corpus.py's FINETUNE_SOURCES (76 packages in no
   evaluation corpus and not among the ranking layer's training packages)
   indexed with the shipped model; each docstring question, its leak-free
   twin (bench/quality.py's leak_free_cases) and, unless --no-names, the
   function's exact name (a name query must keep finding its function), each
   against the stored vector of its answer's chunk.
2. W starts as the identity and is trained against every chunk of the corpus
   at once (softmax over all of them, scale 20, AdamW, seeded), with a pull
   toward the identity; 10 % of the questions (seeded) are held out and their
   MRR@10 over the whole corpus is printed before and after, per kind.
3. W is written as float32 .npy for quality.py --adapter.
"""

from __future__ import annotations

import argparse
import random
import time
from pathlib import Path

import numpy as np
from machine import django_setup, machine_description

SCALE = 20.0
KINDS = ("docstring", "leak-free", "identifier")


class AdaptedQueries:
    """An embedder whose query vectors pass through the adapter W first."""

    def __init__(self, *, inner, matrix: np.ndarray) -> None:
        self.inner = inner
        self.matrix = matrix.astype(np.float32)
        self.model_id = inner.model_id
        self.dimension = inner.dimension

    def embed_documents(self, texts):
        return self.inner.embed_documents(texts)

    def embed_query(self, text: str) -> np.ndarray:
        moved = self.matrix @ self.inner.embed_query(text)
        return (moved / np.linalg.norm(moved)).astype(np.float32)


def adapter_load(path: Path) -> np.ndarray:
    """Return the adapter matrix saved at `path`, refusing any other shape."""
    matrix = np.load(path)
    if matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1]:
        raise SystemExit(f"{path} holds a {matrix.shape} array, not a square adapter")
    return matrix


def _mrr_at_10(
    *, queries: np.ndarray, chunks: np.ndarray, answers: np.ndarray
) -> float:
    scores = queries @ chunks.T
    answer_scores = scores[np.arange(len(answers)), answers]
    ranks = (scores > answer_scores[:, None]).sum(axis=1) + 1
    return float(np.where(ranks <= 10, 1.0 / ranks, 0.0).mean()) if len(ranks) else 0.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--project", default="adapter-pairs")
    parser.add_argument("--out", type=Path, help="where W goes (.npy)")
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument(
        "--pull",
        type=float,
        default=0.001,
        help="weight of the squared distance of W from the identity in the loss",
    )
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--no-names", action="store_true", help="train without the name questions"
    )
    parser.add_argument(
        "--balance",
        action="store_true",
        help="weigh each language's questions alike in the loss",
    )
    args = parser.parse_args()

    django_setup()
    import torch
    from django.conf import settings
    from django.core.management import call_command
    from quality import Case, identifier_cases, is_hit, leak_free_cases
    from quality_corpus import FINETUNE_SOURCES, corpus_build, finetune_sources_check
    from quality_rank import vectors_load

    from indexing.models import CodeChunk
    from indexing.selectors import space_embedder_get
    from indexing.services import repository_index
    from registry.selectors import project_find
    from registry.services import project_alias, project_create

    torch.manual_seed(args.seed)
    torch.set_num_threads(2)
    finetune_sources_check()
    call_command("migrate", verbosity=0)
    print(machine_description())
    workdir = Path(settings.CODEBASE_MCP_HOME) / "bench-quality"
    out = args.out or workdir / "adapter.npy"
    corpus = corpus_build(
        root=workdir / "finetune-corpus",
        cache=workdir / "wheels",
        sources=FINETUNE_SOURCES,
    )
    project = project_find(reference=args.project) or project_create(name=args.project)
    started = time.monotonic()
    summary = repository_index(project=project, repo_path=str(corpus.root))
    print(
        f"pairs corpus: {len(corpus.sources)} packages, {summary.chunks_total} chunks "
        f"({summary.chunks_embedded} embedded now, {time.monotonic() - started:.0f} s)"
    )

    vectors = vectors_load(project=project)
    ids = sorted(vectors)
    row_of = {chunk_id: row for row, chunk_id in enumerate(ids)}
    chunks = np.stack([vectors[i] for i in ids])
    by_path: dict[str, list[tuple[int, int, int, str | None]]] = {}
    spans = CodeChunk.objects.using(project_alias(project=project)).values_list(
        "id", "file__relative_path", "start_line", "end_line", "symbol"
    )
    for chunk_id, path, start, end, symbol in spans:
        if chunk_id in row_of:
            by_path.setdefault(path, []).append((chunk_id, start, end, symbol))

    docstring = [
        Case("docstring", t.language, t.query, t.path, t.name, t.start_line, t.end_line)
        for t in corpus.targets
    ]
    cases = docstring + leak_free_cases(corpus=corpus, docstring=docstring)
    if not args.no_names:
        cases += identifier_cases(corpus=corpus, docstring=docstring)
    questions, answers, kinds, languages = [], [], [], []
    for case in cases:
        hits = [
            chunk
            for chunk in by_path.get(case.path, [])
            if is_hit(case=case, span=(case.path, chunk[1], chunk[2]))
        ]
        named = [chunk for chunk in hits if chunk[3] == case.name]
        if hits:
            questions.append(case.query)
            answers.append(row_of[(named or hits)[0][0]])
            kinds.append(case.set_name)
            languages.append(case.language)
    started = time.monotonic()
    # The project's own model (it may be kept on other shipped weights).
    embedder = space_embedder_get(alias=project_alias(project=project))
    query_vectors = np.stack([embedder.embed_query(q) for q in questions])
    print(
        f"questions: {len(questions)} ("
        + ", ".join(f"{kind} {kinds.count(kind)}" for kind in KINDS)
        + f"), embedded in {time.monotonic() - started:.0f} s"
    )

    order = list(range(len(questions)))
    random.Random(args.seed).shuffle(order)
    held = sorted(order[: len(order) // 10])
    fit = sorted(order[len(order) // 10 :])
    answers_array = np.array(answers)

    def held_report(matrix: np.ndarray, label: str) -> None:
        moved = query_vectors[held] @ matrix.T
        moved /= np.linalg.norm(moved, axis=1, keepdims=True)
        held_answers = answers_array[held]
        parts = []
        for kind in KINDS:
            for language in (None, *sorted(set(languages))):
                rows = [
                    i
                    for i, h in enumerate(held)
                    if kinds[h] == kind and language in (None, languages[h])
                ]
                value = _mrr_at_10(
                    queries=moved[rows], chunks=chunks, answers=held_answers[rows]
                )
                parts.append(f"{kind}{'/' + language if language else ''} {value:.3f}")
        print(f"  held-out MRR@10 over all {len(ids)} chunks, {label}:")
        print("    " + ", ".join(parts))

    identity = np.eye(chunks.shape[1], dtype=np.float32)
    held_report(identity, "no adapter")
    weight = torch.nn.Parameter(torch.eye(chunks.shape[1]))
    optimiser = torch.optim.AdamW([weight], lr=1e-3, weight_decay=0.0)
    chunk_t = torch.from_numpy(chunks)
    query_t = torch.from_numpy(query_vectors)
    answer_t = torch.from_numpy(answers_array)
    counts = {language: languages.count(language) for language in set(languages)}
    weight_t = torch.tensor(
        [1.0 / counts[language] if args.balance else 1.0 for language in languages]
    )
    eye = torch.eye(chunks.shape[1])
    generator = torch.Generator().manual_seed(args.seed)
    started = time.monotonic()
    for epoch in range(args.epochs):
        permutation = torch.tensor(fit)[torch.randperm(len(fit), generator=generator)]
        total = 0.0
        for start in range(0, len(permutation), args.batch):
            batch = permutation[start : start + args.batch]
            moved = torch.nn.functional.normalize(query_t[batch] @ weight.T, dim=1)
            logits = SCALE * moved @ chunk_t.T
            losses = torch.nn.functional.cross_entropy(
                logits, answer_t[batch], reduction="none"
            )
            loss = (losses * weight_t[batch]).sum() / weight_t[batch].sum()
            loss = loss + args.pull * ((weight - eye) ** 2).sum()
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            total += float(loss.detach()) * len(batch)
        print(f"  epoch {epoch + 1}: loss {total / len(fit):.4f}", flush=True)
    matrix = weight.detach().numpy().astype(np.float32)
    print(f"trained in {time.monotonic() - started:.0f} s")
    held_report(matrix, "adapter")
    out.parent.mkdir(parents=True, exist_ok=True)
    np.save(out, matrix)
    print(f"wrote {out} ({out.stat().st_size // 1024} KiB)")


if __name__ == "__main__":
    main()
