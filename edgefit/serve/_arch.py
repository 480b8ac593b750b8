"""A decoder-only transformer described without its weights: what the serving planner needs to
know.

An :class:`Architecture` comes from a Hugging Face ``config.json`` (Llama, Mistral, Qwen-style keys
or GPT-2's ``n_embd``/``n_layer`` keys) or from a preset shipped as data in
``edgefit/serve/presets/`` (the same keys, plus the URL they were copied from). Parameter counts
are exact from the shapes: a gated (SwiGLU) MLP has 3 matrices, a plain (GELU) one 2; grouped-query
attention projects K and V to ``num_kv_heads × head_dim``.

>>> arch = load_architecture("llama-3-70b")
>>> round(arch.params / 1e9, 2), arch.kv_elements_per_token
(70.55, 163840)
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from edgefit.errors import EdgefitError

PRESETS_DIR = Path(__file__).resolve().parent / "presets"

# Hugging Face key → our field; the first key present wins (GPT-2 uses n_embd, n_layer …).
_KEYS: dict[str, tuple[str, ...]] = {
    "hidden_size": ("hidden_size", "n_embd", "d_model"),
    "num_layers": ("num_hidden_layers", "n_layer", "num_layers"),
    "num_heads": ("num_attention_heads", "n_head"),
    "vocab_size": ("vocab_size",),
    "max_positions": ("max_position_embeddings", "n_positions", "max_sequence_length"),
}
_GATED_ACTS = {"silu", "swiglu", "geglu", "gelu_pytorch_tanh_gated"}


@dataclass(frozen=True)
class Architecture:
    """Shapes of a decoder-only transformer (validated on creation).

    >>> Architecture("tiny", 64, 2, 4, 2, 256, 100, 128).params  # 2 x 61440 + 2 x 6400 + 320
    136000
    """

    name: str
    hidden_size: int
    num_layers: int
    num_heads: int
    num_kv_heads: int
    intermediate_size: int
    vocab_size: int
    max_positions: int
    head_dim: int = 0  # 0: hidden_size // num_heads
    tied_embeddings: bool = False
    mlp: Literal["gated", "plain"] = "gated"
    norm: Literal["rms", "layer"] = "rms"
    positions: Literal["rope", "learned"] = "rope"
    attention_bias: bool = False
    mlp_bias: bool = False
    sliding_window: int | None = (
        None  # recorded, not modelled (the KV cache is sized for the full context)
    )
    source: str = ""

    def __post_init__(self) -> None:
        for name in (
            "hidden_size",
            "num_layers",
            "num_heads",
            "num_kv_heads",
            "intermediate_size",
            "vocab_size",
            "max_positions",
        ):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise EdgefitError(
                    f"{name} must be a positive integer, got {value!r}",
                    where=self.source or self.name,
                    fix="check the model's config.json",
                )
        if self.head_dim == 0:
            if self.hidden_size % self.num_heads:
                raise EdgefitError(
                    f"hidden_size {self.hidden_size} is not a multiple of num_heads "
                    f"{self.num_heads}",
                    where=self.source or self.name,
                    fix="give head_dim in the config",
                )
            object.__setattr__(self, "head_dim", self.hidden_size // self.num_heads)
        if self.num_heads % self.num_kv_heads:
            raise EdgefitError(
                f"num_attention_heads {self.num_heads} is not a multiple of num_key_value_heads "
                f"{self.num_kv_heads}",
                where=self.source or self.name,
                fix="check the config",
            )

    # --- parameter counts (exact from the shapes) ------------------------------------------------
    @property
    def q_dim(self) -> int:
        return self.num_heads * self.head_dim

    @property
    def kv_dim(self) -> int:
        return self.num_kv_heads * self.head_dim

    @property
    def layer_matmul_params(self) -> int:
        """Weights of one block's matrices: Q, K, V, O and the MLP (3 matrices gated, 2 plain)."""
        h = self.hidden_size
        attention = h * self.q_dim + 2 * h * self.kv_dim + self.q_dim * h
        return attention + (3 if self.mlp == "gated" else 2) * h * self.intermediate_size

    @property
    def layer_small_params(self) -> int:
        """Norm weights and biases of one block (kept at 16 bits when the matrices are
        quantized)."""
        h, i = self.hidden_size, self.intermediate_size
        norms = 2 * h * (2 if self.norm == "layer" else 1)
        attn_bias = self.q_dim + 2 * self.kv_dim + h if self.attention_bias else 0
        mlp_bias = ((2 * i if self.mlp == "gated" else i) + h) if self.mlp_bias else 0
        return norms + attn_bias + mlp_bias

    @property
    def embedding_params(self) -> int:
        """Token embedding (plus learned positions); gathered by row, never streamed whole."""
        return self.vocab_size * self.hidden_size + (
            self.max_positions * self.hidden_size if self.positions == "learned" else 0
        )

    @property
    def lm_head_params(self) -> int:
        """The output projection's own weights (0 when tied to the embedding)."""
        return 0 if self.tied_embeddings else self.vocab_size * self.hidden_size

    @property
    def matmul_params(self) -> int:
        """Weights every decode step multiplies by: all blocks' matrices plus the LM head (tied or
        not)."""
        return self.num_layers * self.layer_matmul_params + self.vocab_size * self.hidden_size

    @property
    def matmul_row_lengths(self) -> dict[int, int]:
        """The matrices of :attr:`matmul_params` by row length (their input features, as torch
        stores a Linear): weights → count. A matrix-vector product over short rows streams slower
        (on a Zen 5, 768-long rows at 16.5 GB/s, 3072-long at 22 GB/s, one thread)."""
        h, i, layers = self.hidden_size, self.intermediate_size, self.num_layers
        up = (2 if self.mlp == "gated" else 1) * h * i
        rows: dict[int, int] = {}
        for length, count in (
            (h, layers * (h * self.q_dim + 2 * h * self.kv_dim + up) + self.vocab_size * h),
            (self.q_dim, layers * self.q_dim * h),  # the attention output projection
            (i, layers * i * h),  # the MLP's down projection
        ):
            rows[length] = rows.get(length, 0) + count
        return rows

    @property
    def small_params(self) -> int:
        return self.num_layers * self.layer_small_params + self.hidden_size * (
            2 if self.norm == "layer" else 1
        )

    @property
    def params(self) -> int:
        """Every parameter, counted once (a tied LM head shares the embedding)."""
        return (
            self.num_layers * self.layer_matmul_params
            + self.embedding_params
            + self.lm_head_params
            + self.small_params
        )

    @property
    def kv_elements_per_token(self) -> int:
        """K and V elements cached per token: 2 × layers × KV heads × head_dim."""
        return 2 * self.num_layers * self.kv_dim

    def summary(self) -> dict:
        return {
            "name": self.name,
            "params": self.params,
            "hidden_size": self.hidden_size,
            "num_layers": self.num_layers,
            "num_heads": self.num_heads,
            "num_kv_heads": self.num_kv_heads,
            "head_dim": self.head_dim,
            "intermediate_size": self.intermediate_size,
            "vocab_size": self.vocab_size,
            "max_positions": self.max_positions,
            "tied_embeddings": self.tied_embeddings,
            "mlp": self.mlp,
            "norm": self.norm,
            "positions": self.positions,
            "sliding_window": self.sliding_window,
            "source": self.source,
        }


def _pick(config: Mapping[str, Any], field: str, where: str) -> int:
    for key in _KEYS[field]:
        if config.get(key) is not None:
            return config[key]
    raise EdgefitError(
        f"config lacks {' / '.join(_KEYS[field])}",
        where=where,
        fix="give a Hugging Face-style config.json with these fields, or use a preset "
        f"({', '.join(list_presets())})",
    )


def from_hf_config(
    config: Mapping[str, Any], *, name: str = "model", source: str = "<config>"
) -> Architecture:
    """An :class:`Architecture` from a Hugging Face ``config.json`` mapping.

    >>> from_hf_config({"n_embd": 768, "n_layer": 12, "n_head": 12, "n_positions": 1024,
    ...                 "vocab_size": 50257, "model_type": "gpt2"}).params
    124439808
    """
    if not isinstance(config, Mapping):
        raise EdgefitError(
            "a model config must be a JSON object", where=source, fix="give a config.json"
        )
    hidden = _pick(config, "hidden_size", source)
    gpt2 = config.get("model_type") == "gpt2" or "n_embd" in config
    act = str(
        config.get("hidden_act")
        or config.get("activation_function")
        or ("gelu" if gpt2 else "silu")
    )
    heads = _pick(config, "num_heads", source)
    inter = (
        config.get("intermediate_size") or config.get("n_inner") or (4 * hidden if gpt2 else None)
    )
    if inter is None:
        raise EdgefitError(
            "config lacks intermediate_size", where=source, fix="add intermediate_size"
        )
    return Architecture(
        name=name,
        hidden_size=hidden,
        num_layers=_pick(config, "num_layers", source),
        num_heads=heads,
        num_kv_heads=config.get("num_key_value_heads") or heads,
        intermediate_size=inter,
        vocab_size=_pick(config, "vocab_size", source),
        max_positions=_pick(config, "max_positions", source),
        head_dim=config.get("head_dim") or 0,
        tied_embeddings=bool(config.get("tie_word_embeddings", gpt2)),
        mlp="gated" if act in _GATED_ACTS else "plain",
        norm="layer" if gpt2 else "rms",
        positions="learned" if gpt2 else "rope",
        attention_bias=bool(config.get("attention_bias", gpt2)),
        mlp_bias=bool(config.get("mlp_bias", gpt2)),
        sliding_window=config.get("sliding_window") or None,
        source=source,
    )


def _preset_files() -> dict[str, Path]:
    index: dict[str, Path] = {}
    for path in sorted(PRESETS_DIR.glob("*.json")):
        index[path.stem] = path
        for alias in json.loads(path.read_text()).get("aliases", []):
            index.setdefault(alias.lower(), path)
    return index


def list_presets() -> list[str]:
    """Names of the shipped model presets.

    >>> "llama-3-70b" in list_presets()
    True
    """
    return sorted(p.stem for p in PRESETS_DIR.glob("*.json"))


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, UnicodeDecodeError) as exc:
        raise EdgefitError(
            f"cannot read {path}: {exc}", where="--model", fix="check the path"
        ) from None
    except json.JSONDecodeError as exc:
        raise EdgefitError(
            f"not valid JSON (line {exc.lineno}: {exc.msg})",
            where=str(path),
            fix="give a Hugging Face config.json",
        ) from None


def load_architecture(name: str | Path | Architecture) -> Architecture:
    """A preset name or alias (``llama-3-70b``, ``meta-llama/Meta-Llama-3-70B``), or a path to a
    ``config.json`` (or a preset-style file with ``config`` and ``source``).

    >>> load_architecture("gpt2").tied_embeddings
    True
    """
    if isinstance(name, Architecture):
        return name
    text = str(name)
    preset = _preset_files().get(text.lower())
    path = preset or Path(text)
    if preset is None and not path.is_file():
        raise EdgefitError(
            f"unknown model '{text}'",
            where="--model",
            fix=f"use a preset ({', '.join(list_presets())}) or a path to a config.json",
        )
    data = _read_json(path)
    if isinstance(data, dict) and isinstance(data.get("config"), dict):
        return from_hf_config(
            data["config"],
            name=str(data.get("name", path.stem)),
            source=str(data.get("source") or path),
        )
    return from_hf_config(
        data, name=path.parent.name if path.name == "config.json" else path.stem, source=str(path)
    )
