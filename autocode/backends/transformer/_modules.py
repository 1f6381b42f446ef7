"""The nn.Module classes of the inference loop: a lean BERT-family forward pass and the scorer around it.

Importing this module imports torch; :func:`autocode.backends.transformer.inference.build_scorer` imports it
on first use, after checking that torch is installed, so that the rest of autocode imports without torch.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["FAST_MODEL_TYPES", "FastBertEncoder", "Scorer"]

FAST_MODEL_TYPES = ("bert", "roberta", "xlm-roberta")
"""Encoder families the lean forward pass supports; others use their Hugging Face forward."""


def _varlen_available(device) -> bool:
    if device.type != "cuda":
        return False
    try:
        from torch.nn.attention.varlen import varlen_attn  # noqa: F401
    except ImportError:
        return False
    return True


class FastBertEncoder(nn.Module):
    """Inference-only forward pass over a BERT-family model's weights (no dropout, fused QKV, SDPA).

    Padded: ``forward(input_ids [B, L], lengths [B]) -> hidden [B, L, H]``. Packed:
    ``forward_packed(input_ids [T], positions [T], cu_seqlens [B+1], max_len) -> hidden [T, H]``.
    """

    def __init__(self, hf_model):
        super().__init__()
        cfg = hf_model.config
        emb = hf_model.embeddings
        self.word = emb.word_embeddings
        self.pos = emb.position_embeddings
        self.types = emb.token_type_embeddings
        self.emb_ln = emb.LayerNorm
        self.n_heads = cfg.num_attention_heads
        self.pos_offset = cfg.pad_token_id + 1 if cfg.model_type in ("roberta", "xlm-roberta") else 0
        self.act = cfg.hidden_act
        self.qkv = nn.ModuleList()
        self.attn_out, self.attn_ln, self.ffn_in, self.ffn_out, self.ffn_ln = (nn.ModuleList() for _ in range(5))
        for layer in hf_model.encoder.layer:
            sa = layer.attention.self
            fused = nn.Linear(sa.query.in_features, 3 * sa.query.out_features,
                              device=sa.query.weight.device, dtype=sa.query.weight.dtype)
            with torch.no_grad():
                fused.weight.copy_(torch.cat([sa.query.weight, sa.key.weight, sa.value.weight]))
                fused.bias.copy_(torch.cat([sa.query.bias, sa.key.bias, sa.value.bias]))
            self.qkv.append(fused)
            self.attn_out.append(layer.attention.output.dense)
            self.attn_ln.append(layer.attention.output.LayerNorm)
            self.ffn_in.append(layer.intermediate.dense)
            self.ffn_out.append(layer.output.dense)
            self.ffn_ln.append(layer.output.LayerNorm)

    def _gelu(self, x):
        if self.act in ("gelu_new", "gelu_pytorch_tanh", "gelu_fast"):
            return F.gelu(x, approximate="tanh")
        return F.gelu(x)

    def _embed(self, input_ids, positions, token_type_ids):
        x = self.word(input_ids) + self.pos(positions + self.pos_offset)
        if token_type_ids is None:
            x = x + self.types.weight[0]
        else:
            x = x + self.types(token_type_ids)
        return self.emb_ln(x)

    def _ffn(self, i, x):
        return self.ffn_ln[i](self.ffn_out[i](self._gelu(self.ffn_in[i](x))) + x)

    def forward(self, input_ids, lengths, token_type_ids=None):
        B, L = input_ids.shape
        ar = torch.arange(L, device=input_ids.device)
        x = self._embed(input_ids, ar[None, :], token_type_ids)
        mask = (ar[None, :] < lengths[:, None])[:, None, None, :]  # [B, 1, 1, L]: keys to attend
        H = x.shape[-1]
        nh = self.n_heads
        for i in range(len(self.qkv)):
            q, k, v = self.qkv[i](x).view(B, L, 3, nh, H // nh).permute(2, 0, 3, 1, 4).unbind(0)
            o = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
            o = o.transpose(1, 2).reshape(B, L, H)
            x = self.attn_ln[i](self.attn_out[i](o) + x)
            x = self._ffn(i, x)
        return x

    def forward_packed(self, input_ids, positions, cu_seqlens, max_len: int, token_type_ids=None,
                       pad_index=None):
        T = input_ids.shape[0]
        x = self._embed(input_ids, positions, token_type_ids)
        H = x.shape[-1]
        nh = self.n_heads
        use_varlen = _varlen_available(x.device)
        if use_varlen:
            from torch.nn.attention.varlen import varlen_attn
        for i in range(len(self.qkv)):
            q, k, v = self.qkv[i](x).view(T, 3, nh, H // nh).unbind(1)
            if use_varlen:
                o = varlen_attn(q.contiguous(), k.contiguous(), v.contiguous(), cu_seqlens, cu_seqlens,
                                max_len, max_len)
            else:  # CPU: pad, attend, unpad (pad_index maps [B, L] slots to packed tokens, T = padding)
                o = _padded_attention(q, k, v, pad_index)
            x = self.attn_ln[i](self.attn_out[i](o.reshape(T, H)) + x)
            x = self._ffn(i, x)
        return x


def _padded_attention(q, k, v, pad_index):
    T, nh, hd = q.shape
    B, L = pad_index.shape
    valid = pad_index < T
    zero = q.new_zeros(1, nh, hd)

    def pad(t):
        return torch.cat([t, zero])[pad_index].transpose(1, 2)  # [B, nh, L, hd]

    o = F.scaled_dot_product_attention(pad(q), pad(k), pad(v), attn_mask=valid[:, None, None, :])
    out = q.new_empty(T + 1, nh, hd)
    out[pad_index.reshape(-1)] = o.transpose(1, 2).reshape(B * L, nh, hd)
    return out[:T]


class Scorer(nn.Module):
    """Encoder + pooling + linear head: token ids in, one score per code out."""

    def __init__(self, encoder, head, pooling: str = "mean", fast: bool | None = None):
        super().__init__()
        mt = getattr(encoder.config, "model_type", "")
        ok = mt in FAST_MODEL_TYPES and getattr(encoder.config, "position_embedding_type",
                                                "absolute") in (None, "absolute")
        if fast and not ok:
            raise ValueError(f"The lean forward pass supports {FAST_MODEL_TYPES}, not {mt!r}.")
        self.fast = ok if fast is None else fast
        self.encoder = FastBertEncoder(encoder) if self.fast else encoder
        self.head = head
        self.pooling = pooling
        self.pad_id = encoder.config.pad_token_id or 0
        self.graphs: dict = {}  # CUDA graphs captured by inference.score, by shape, kept between calls

    def forward(self, input_ids, lengths, token_type_ids=None):
        B, L = input_ids.shape
        if self.fast:
            h = self.encoder(input_ids, lengths, token_type_ids)
        else:
            mask = (torch.arange(L, device=input_ids.device)[None, :] < lengths[:, None]).long()
            kw = {} if token_type_ids is None else {"token_type_ids": token_type_ids.long()}
            h = self.encoder(input_ids=input_ids.long(), attention_mask=mask, **kw).last_hidden_state
        if self.pooling == "cls":
            pooled = h[:, 0]
        else:
            m = (torch.arange(L, device=h.device)[None, :] < lengths[:, None]).to(h.dtype)
            pooled = (h * m[..., None]).sum(1) / lengths[:, None].clamp(min=1).to(h.dtype)
        return self.head(pooled)

    def forward_packed(self, input_ids, positions, cu_seqlens, max_len: int, seq_ids, lengths,
                       token_type_ids=None, pad_index=None):
        h = self.encoder.forward_packed(input_ids, positions, cu_seqlens, max_len, token_type_ids,
                                        pad_index)
        if self.pooling == "cls":
            pooled = h[cu_seqlens[:-1].long()]
        else:
            pooled = h.new_zeros(lengths.shape[0], h.shape[-1]).index_add_(0, seq_ids, h)
            pooled = pooled / lengths[:, None].clamp(min=1).to(h.dtype)
        return self.head(pooled)
