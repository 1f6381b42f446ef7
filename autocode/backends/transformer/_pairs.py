"""The cross-encoder of ``rerank.v1``: torch parts (imported only when a reranker is trained, scored or loaded).

The encoder is split at layer ``split``. Its lower layers read the segment and the code's text *apart* and are
frozen, so a segment's lower states are computed once per corpus (and kept in :data:`_STATES` for the process,
as cross-validation encodes the same segments again); its upper layers read the pair *together* (the segment's
states followed by the code's, attention across both) and are fine-tuned with a small head. With ``split`` 0
every layer reads the pair together over separately computed embeddings. This is the precomputed-lower-layers
cross-encoder of MacAvaney et al. (2020, "Efficient document re-ranking for transformers by precomputing term
representations"): on a CPU only the joint layers cost per pair.

The head reads the mean states of the two sides after the joint layers, each L2-normalised (``u``, ``v``):
``[u * v, u, v] -> logit``. It starts as a logistic regression on those features of the training pairs (a
linear probe, as the transformer backend's head: a random head barely moves in the few hundred steps a study
gives), then everything above the split is trained with binary cross-entropy.
"""

from __future__ import annotations

import copy
import hashlib
import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["PairScorer", "lower_encoder", "lower_states", "pair_batches", "train_pairs", "score_pairs"]

_STATES: dict[tuple, np.ndarray] = {}
"""Lower states by (encoder key, split, token ids): cross-validation encodes the same segments once per fold."""
MAX_KEPT = 200_000


def _layers(hf_model):
    return hf_model.encoder.layer


def lower_encoder(hf_model, split: int):
    """A copy of ``hf_model`` with only its first ``split`` layers (its embeddings included), frozen."""
    lower = copy.deepcopy(hf_model)
    lower.encoder.layer = nn.ModuleList(list(_layers(lower))[:split])
    lower.eval()
    for p in lower.parameters():
        p.requires_grad_(False)
    return lower


def _key(ids: np.ndarray) -> str:
    return hashlib.sha1(np.asarray(ids, dtype=np.int32).tobytes()).hexdigest()


def lower_states(lower, ids: list[np.ndarray], *, cache_key: tuple, batch_tokens: int = 4096,
                 device=None) -> list[np.ndarray]:
    """The lower encoder's last hidden states of each token sequence (float16, ``[length, hidden]``), batched by
    length; sequences seen before in this process under the same ``cache_key`` are not run again."""
    out: list[np.ndarray | None] = [None] * len(ids)
    todo = []
    for i, seq in enumerate(ids):
        got = _STATES.get((*cache_key, _key(seq)))
        if got is None:
            todo.append(i)
        else:
            out[i] = got
    todo.sort(key=lambda i: len(ids[i]))
    pad = lower.config.pad_token_id or 0
    start = 0
    while start < len(todo):
        stop = start + 1
        while stop < len(todo) and (stop - start + 1) * len(ids[todo[stop]]) <= batch_tokens:
            stop += 1
        rows = todo[start:stop]
        longest = max(len(ids[i]) for i in rows)
        x = torch.full((len(rows), longest), pad, dtype=torch.long)
        mask = torch.zeros((len(rows), longest), dtype=torch.long)
        for r, i in enumerate(rows):
            x[r, : len(ids[i])] = torch.from_numpy(np.asarray(ids[i], dtype=np.int64))
            mask[r, : len(ids[i])] = 1
        with torch.no_grad():
            h = lower.to(device or "cpu")(input_ids=x.to(device or "cpu"),
                                          attention_mask=mask.to(device or "cpu")).last_hidden_state
        h = h.to("cpu", torch.float16)
        for r, i in enumerate(rows):
            state = h[r, : len(ids[i])].numpy()
            out[i] = state
            if len(_STATES) < MAX_KEPT:
                _STATES[(*cache_key, _key(ids[i]))] = state
        start = stop
    return out  # type: ignore[return-value]


class PairScorer(nn.Module):
    """The joint layers (copies of the encoder's layers from ``split`` on) and the pair head."""

    def __init__(self, layers, hidden: int, n_heads: int, act: str = "gelu", dropout: float = 0.1):
        super().__init__()
        self.layers = nn.ModuleList(layers)
        self.head = nn.Linear(3 * hidden, 1)
        self.n_heads, self.act, self.dropout = n_heads, act, dropout

    def _layer(self, layer, x, mask):
        B, L, H = x.shape
        sa = layer.attention.self
        nh = self.n_heads

        def heads(t):
            return t.view(B, L, nh, H // nh).transpose(1, 2)

        p = self.dropout if self.training else 0.0
        o = F.scaled_dot_product_attention(heads(sa.query(x)), heads(sa.key(x)), heads(sa.value(x)),
                                           attn_mask=mask, dropout_p=p)
        o = o.transpose(1, 2).reshape(B, L, H)
        x = layer.attention.output.LayerNorm(F.dropout(layer.attention.output.dense(o), p, self.training) + x)
        inner = layer.intermediate.dense(x)
        inner = F.gelu(inner, approximate="tanh") if self.act in ("gelu_new", "gelu_pytorch_tanh") else F.gelu(inner)
        return layer.output.LayerNorm(F.dropout(layer.output.dense(inner), p, self.training) + x)

    def features(self, seg, seg_len, code, code_len):
        """``[u * v, u, v]`` of each pair (``seg`` ``[B, Ls, H]``, ``code`` ``[B, Lc, H]``, padded)."""
        Ls, Lc = seg.shape[1], code.shape[1]
        ar_s = torch.arange(Ls, device=seg.device)[None, :] < seg_len[:, None]
        ar_c = torch.arange(Lc, device=seg.device)[None, :] < code_len[:, None]
        valid = torch.cat([ar_s, ar_c], dim=1)
        x = torch.cat([seg, code], dim=1)
        mask = valid[:, None, None, :]
        for layer in self.layers:
            x = self._layer(layer, x, mask)
        ms, mc = ar_s.to(x.dtype)[..., None], ar_c.to(x.dtype)[..., None]
        u = F.normalize((x[:, :Ls] * ms).sum(1) / ms.sum(1).clamp(min=1), dim=-1)
        v = F.normalize((x[:, Ls:] * mc).sum(1) / mc.sum(1).clamp(min=1), dim=-1)
        return torch.cat([u * v, u, v], dim=-1)

    def forward(self, seg, seg_len, code, code_len):
        return self.head(self.features(seg, seg_len, code, code_len)).squeeze(-1)


def _stack(states: list[np.ndarray]):
    longest = max(1, max(len(s) for s in states))
    out = np.zeros((len(states), longest, states[0].shape[1] if states else 1), dtype=np.float32)
    for i, s in enumerate(states):
        out[i, : len(s)] = s
    return torch.from_numpy(out), torch.tensor([len(s) for s in states], dtype=torch.long)


def pair_batches(pairs: np.ndarray, seg_states, code_states, batch_size: int, device=None):
    """Tensors of ``pairs`` (rows of (segment, code)) in batches of ``batch_size``, in the order given."""
    for s in range(0, len(pairs), batch_size):
        chunk = pairs[s : s + batch_size]
        seg, seg_len = _stack([seg_states[i] for i in chunk[:, 0]])
        code, code_len = _stack([code_states[j] for j in chunk[:, 1]])
        yield tuple(t.to(device or "cpu") for t in (seg, seg_len, code, code_len))


def score_pairs(net: PairScorer, pairs: np.ndarray, seg_states, code_states, batch_size: int = 64,
                device=None) -> np.ndarray:
    """The net's logit of each (segment, code) pair, in order (the segments sorted by length inside)."""
    if not len(pairs):
        return np.zeros(0)
    order = np.argsort([len(seg_states[i]) for i in pairs[:, 0]], kind="stable")
    out = np.empty(len(pairs))
    net.to(device or "cpu").eval()
    with torch.no_grad():
        done = 0
        for batch in pair_batches(pairs[order], seg_states, code_states, batch_size, device):
            got = net(*batch).double().cpu().numpy()
            out[order[done : done + len(got)]] = got
            done += len(got)
    return out


def _length_batches(lengths: np.ndarray, batch_size: int, rng) -> np.ndarray:
    """A permutation of the pairs whose consecutive ``batch_size`` runs hold segments of similar length (sorted
    with a little noise, batches in random order), so that batches carry little padding."""
    noisy = lengths * rng.uniform(0.8, 1.25, size=len(lengths))
    order = np.argsort(noisy, kind="stable")
    batches = [order[s : s + batch_size] for s in range(0, len(order), batch_size)]
    return np.concatenate([batches[i] for i in rng.permutation(len(batches))]) if batches else order


def train_pairs(net: PairScorer, pairs: np.ndarray, labels: np.ndarray, seg_states, code_states, *, epochs: int,
                learning_rate: float, batch_size: int, seed: int, probe_pairs: int = 512, device=None) -> list[dict]:
    """Start the head as a logistic regression on the features of up to ``probe_pairs`` training pairs, then
    train the net with binary cross-entropy (AdamW, linear warm-up over the first tenth of the steps and decay;
    the head at ten times ``learning_rate``). Returns the mean loss of each epoch."""
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(seed)
    torch.manual_seed(seed)
    device = device or "cpu"
    net.to(device)
    y = torch.from_numpy(labels.astype(np.float32)).to(device)
    probe = rng.permutation(len(pairs))[:probe_pairs]
    if 0 < labels[probe].sum() < len(probe):
        net.eval()
        with torch.no_grad():
            X = torch.cat([net.features(*b).cpu()
                           for b in pair_batches(pairs[probe], seg_states, code_states, 64, device)])
        clf = LogisticRegression(C=1.0, max_iter=1000, random_state=seed).fit(X.numpy(), labels[probe])
        with torch.no_grad():
            net.head.weight.copy_(torch.from_numpy(clf.coef_.astype(np.float32)))
            net.head.bias.fill_(float(clf.intercept_[0]))
    steps = max(1, math.ceil(len(pairs) / batch_size)) * max(int(epochs), 0)
    history = []
    if not steps:
        return history
    warm = max(1, steps // 10)
    head = set(map(id, net.head.parameters()))
    opt = torch.optim.AdamW([{"params": [p for p in net.parameters() if id(p) not in head], "lr": learning_rate},
                             {"params": list(net.head.parameters()), "lr": 10 * learning_rate}], weight_decay=0.01)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min((s + 1) / warm, max(0.0, (steps - s) / max(1, steps - warm))))
    net.train()
    lengths = np.array([len(seg_states[i]) for i in pairs[:, 0]], dtype=np.float64)
    for epoch in range(int(epochs)):
        order = _length_batches(lengths, batch_size, rng)
        total = 0.0
        for s, batch in enumerate(pair_batches(pairs[order], seg_states, code_states, batch_size, device)):
            rows = torch.from_numpy(order[s * batch_size : s * batch_size + len(batch[0])]).to(device)
            loss = F.binary_cross_entropy_with_logits(net(*batch), y[rows])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
            opt.step()
            sched.step()
            total += float(loss.detach()) * len(rows)
        history.append({"epoch": epoch + 1, "train_loss": total / len(pairs)})
    net.eval()
    return history
