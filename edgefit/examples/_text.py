"""A small pre-norm transformer encoder classifier, written with explicit Linear / matmul / softmax
/ LayerNorm modules so that its ONNX export shows MatMul, Softmax and LayerNormalization nodes
(``nn.MultiheadAttention`` takes fused fast paths that export as opaque or unusual graphs)."""

from __future__ import annotations

import torch
from torch import nn

from edgefit.examples._layers import activation, kept, make_divisible

HEADS = 4


class SelfAttention(nn.Module):
    """Multi-head scaled dot-product self-attention, one Linear per projection."""

    def __init__(self, dim: int, heads: int = HEADS) -> None:
        super().__init__()
        self.heads, self.head_dim = heads, dim // heads
        self.scale = self.head_dim**-0.5
        self.q, self.k, self.v, self.out = (nn.Linear(dim, dim) for _ in range(4))
        self.softmax = nn.Softmax(dim=-1)

    def _split(self, x: torch.Tensor) -> torch.Tensor:
        n, t, _ = x.shape
        return x.reshape(n, t, self.heads, self.head_dim).transpose(1, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        q, k, v = self._split(self.q(x)), self._split(self.k(x)), self._split(self.v(x))
        attn = self.softmax(torch.matmul(q, k.transpose(-2, -1)) * self.scale)
        y = torch.matmul(attn, v).transpose(1, 2)
        return self.out(y.reshape(x.shape))


class EncoderLayer(nn.Module):
    """Pre-norm encoder layer: x + attn(LN(x)), then x + FFN(LN(x))."""

    def __init__(self, dim: int, ffn: int, act: str) -> None:
        super().__init__()
        self.norm1, self.attn = nn.LayerNorm(dim), SelfAttention(dim)
        self.norm2 = nn.LayerNorm(dim)
        self.ffn = nn.Sequential(nn.Linear(dim, ffn), activation(act), nn.Linear(ffn, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.ffn(self.norm2(x))


class TinyTransformer(nn.Module):
    """Token ids ``(N, T)`` → class logits: embedding + learned positions, 4 encoder layers
    (d_model 256, 4 heads, FFN 1024), final LayerNorm, mean pool over tokens, linear head.

    ``width`` scales d_model (a multiple of 32, so heads stay whole) and the FFN; ``depth`` keeps a
    fraction of the layers; the sequence length is fixed at build time by the position table.

    >>> TinyTransformer(seq_len=16)(torch.zeros(2, 16, dtype=torch.int64)).shape
    torch.Size([2, 4])
    """

    def __init__(
        self,
        width: float = 1.0,
        depth: float = 1.0,
        act: str = "gelu",
        seq_len: int = 128,
        vocab: int = 4096,
        num_classes: int = 4,
    ) -> None:
        super().__init__()
        dim = make_divisible(256 * width, HEADS * 8)
        self.embed = nn.Embedding(vocab, dim)
        self.pos = nn.Parameter(torch.zeros(1, seq_len, dim))
        self.layers = nn.Sequential(
            *(EncoderLayer(dim, 4 * dim, act) for _ in range(kept(4, depth)))
        )
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, num_classes)
        nn.init.normal_(self.embed.weight, std=0.02)
        nn.init.normal_(self.pos, std=0.02)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        x = self.layers(self.embed(tokens) + self.pos)
        return self.head(self.norm(x).mean(dim=1))
