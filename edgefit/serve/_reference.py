"""A reference decoder in torch, built from an :class:`Architecture` with random weights and a KV
cache.

It exists to hold the planner against a real run on the CPU: the same shapes the planner counts
(GQA projections, gated or plain MLP, tied or untied LM head), a preallocated KV cache written in
place, ``scaled_dot_product_attention`` and the LM head on the last position only, as serving
runtimes do. Rotary embeddings are left out (elementwise, a negligible share of the time); learned
positions are added. Importing this module imports torch.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from edgefit.serve._arch import Architecture


class _RMSNorm(nn.Module):
    def __init__(self, dim: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + 1e-5) * self.weight


def _norm(arch: Architecture) -> nn.Module:
    return nn.LayerNorm(arch.hidden_size) if arch.norm == "layer" else _RMSNorm(arch.hidden_size)


class _Block(nn.Module):
    k_cache: torch.Tensor  # registered buffers (the KV cache), typed for the checker
    v_cache: torch.Tensor

    def __init__(self, arch: Architecture, batch: int, max_len: int, dtype: torch.dtype) -> None:
        super().__init__()
        h, i = arch.hidden_size, arch.intermediate_size
        self.arch = arch
        self.norm1, self.norm2 = _norm(arch), _norm(arch)
        self.qkv = nn.Linear(h, arch.q_dim + 2 * arch.kv_dim, bias=arch.attention_bias)
        self.o = nn.Linear(arch.q_dim, h, bias=arch.attention_bias)
        self.up = nn.Linear(h, (2 if arch.mlp == "gated" else 1) * i, bias=arch.mlp_bias)
        self.down = nn.Linear(i, h, bias=arch.mlp_bias)
        shape = (batch, arch.num_kv_heads, max_len, arch.head_dim)
        self.register_buffer("k_cache", torch.zeros(shape, dtype=dtype), persistent=False)
        self.register_buffer("v_cache", torch.zeros(shape, dtype=dtype), persistent=False)

    def _mlp(self, x: torch.Tensor) -> torch.Tensor:
        if self.arch.mlp == "gated":
            gate, up = self.up(x).chunk(2, dim=-1)
            return self.down(F.silu(gate) * up)
        return self.down(F.gelu(self.up(x), approximate="tanh"))

    def forward(self, x: torch.Tensor, pos: int) -> torch.Tensor:
        a = self.arch
        b, t, _ = x.shape
        q, k, v = self.qkv(self.norm1(x)).split([a.q_dim, a.kv_dim, a.kv_dim], dim=-1)
        q = q.view(b, t, a.num_heads, a.head_dim).transpose(1, 2)
        self.k_cache[:, :, pos : pos + t] = k.view(b, t, a.num_kv_heads, a.head_dim).transpose(
            1, 2
        )
        self.v_cache[:, :, pos : pos + t] = v.view(b, t, a.num_kv_heads, a.head_dim).transpose(
            1, 2
        )
        keys, values = self.k_cache[:, :, : pos + t], self.v_cache[:, :, : pos + t]
        # a prefill starts at position 0 here, so the causal mask is the square one
        att = F.scaled_dot_product_attention(
            q, keys, values, is_causal=t > 1, enable_gqa=a.num_kv_heads != a.num_heads
        )
        x = x + self.o(att.transpose(1, 2).reshape(b, t, a.q_dim))
        return x + self._mlp(self.norm2(x))


class ReferenceDecoder(nn.Module):
    """A decoder with random weights and a KV cache for ``batch`` sequences of up to ``max_len``
    tokens.

    >>> from edgefit.serve import Architecture
    >>> m = ReferenceDecoder(Architecture("tiny", 64, 2, 4, 2, 256, 100, 128), max_len=16)
    >>> tokens = torch.zeros(1, 8, dtype=torch.long)
    >>> m.prefill(tokens).shape, m.decode(tokens[:, :1], 8).shape
    (torch.Size([1, 100]), torch.Size([1, 100]))
    """

    def __init__(
        self,
        arch: Architecture,
        *,
        batch: int = 1,
        max_len: int | None = None,
        dtype: torch.dtype = torch.float32,
        seed: int = 0,
    ) -> None:
        super().__init__()
        torch.manual_seed(seed)
        self.arch = arch
        max_len = max_len or arch.max_positions
        self.embed = nn.Embedding(arch.vocab_size, arch.hidden_size)
        self.positions = (
            nn.Embedding(arch.max_positions, arch.hidden_size)
            if arch.positions == "learned"
            else None
        )
        self.blocks = nn.ModuleList(
            _Block(arch, batch, max_len, dtype) for _ in range(arch.num_layers)
        )
        self.norm = _norm(arch)
        self.lm_head = (
            None
            if arch.tied_embeddings
            else nn.Linear(arch.hidden_size, arch.vocab_size, bias=False)
        )
        self.to(dtype)
        self.eval()

    def parameter_count(self) -> int:
        return sum(p.numel() for p in self.parameters())

    @torch.inference_mode()
    def forward(self, tokens: torch.Tensor, pos: int = 0) -> torch.Tensor:
        """Logits of the last position of ``tokens`` (batch × T), written into the cache at
        ``pos``."""
        x = self.embed(tokens)
        if self.positions is not None:
            x = x + self.positions(torch.arange(pos, pos + tokens.shape[1]))
        for block in self.blocks:
            x = block(x, pos)
        x = self.norm(x[:, -1])
        return x @ self.embed.weight.T if self.lm_head is None else self.lm_head(x)

    def prefill(self, tokens: torch.Tensor) -> torch.Tensor:
        return self(tokens, 0)

    def decode(self, token: torch.Tensor, pos: int) -> torch.Tensor:
        """One step: ``token`` (batch × 1) at position ``pos``, attending to the ``pos`` cached
        tokens."""
        return self(token, pos)
