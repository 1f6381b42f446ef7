"""The zero-to-trained learning curve of ``agreement.py`` (``--only learning-curve``): from no coded document
to many, the codebook-only model (``codebook.v1`` without data) at k = 0, then at each k the model blending the
codebook prior with what it learned (``codebook.v1``) and today's default, fitted on the same k documents and
tested on the same others (paired draws)."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np
from _common import coding_model, fmt, log, paired, quiet, rows_of

import autocode as ac
from autocode.backends import embedding

PRIOR = {"backend": "codebook.v1"}
"""The blended model: the default's settings with the codebook prior backend."""


class EmbeddingCache:
    """Wraps :func:`autocode.backends.embedding.embed` with vectors kept on disk, keyed by the SHA-1 of the text
    (``query: `` prefixed for query embeddings), so that a rerun embeds nothing twice."""

    def __init__(self, path: Path | None):
        self.path, self.vectors, self.embed = path, {}, embedding.embed
        if path is not None and path.exists():
            with np.load(path) as z:
                self.vectors = dict(zip(z["keys"].tolist(), z["vecs"]))

    @staticmethod
    def key(text: str, kind: str) -> str:
        return hashlib.sha1(((kind + ": ") if kind == "query" else "").encode() + text.encode()).hexdigest()

    def __call__(self, texts, *, progress: bool = False, chunk: int = 128, kind: str = "passage") -> np.ndarray:
        keys = [self.key(t, kind) for t in texts]
        missing = sorted({t for t, k in zip(texts, keys) if t.strip() and k not in self.vectors})
        if missing:
            for t, v in zip(missing, self.embed(missing, progress=progress, kind=kind)):
                self.vectors[self.key(t, kind)] = v
            if self.path is not None:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                tmp = self.path.with_name(self.path.stem + ".tmp.npz")
                np.savez(tmp, keys=np.array(list(self.vectors)), vecs=np.stack(list(self.vectors.values())))
                os.replace(tmp, self.path)
        out = np.zeros((len(texts), 384), dtype=np.float32)
        for i, (t, k) in enumerate(zip(texts, keys)):
            if t.strip():
                out[i] = self.vectors[k]
        return out

    def __enter__(self) -> EmbeddingCache:
        embedding.embed = self
        return self

    def __exit__(self, *exc) -> None:
        embedding.embed = self.embed


def full_scores(model: ac.CodingModel, segments, codes: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Scores and accepted decisions over every code of ``codes`` (0 / False for codes the model lacks)."""
    sug = model.suggest(segments)
    S = np.zeros((len(segments), len(codes)))
    A = np.zeros((len(segments), len(codes)), dtype=bool)
    cols = [codes.index(c) for c in model.codes_]
    S[:, cols] = sug.scores
    A[:, cols] = sug.accepted
    return S, A


def _top5(S: np.ndarray) -> np.ndarray:
    """Each segment's 5 best-scored codes, as a boolean matrix."""
    in_top = np.zeros(S.shape, dtype=bool)
    np.put_along_axis(in_top, np.argsort(-S, axis=1, kind="stable")[:, :5], True, axis=1)
    return in_top


def metrics(S: np.ndarray, A: np.ndarray, test: ac.CodedCorpus, codes: list[str]) -> dict:
    """Per coder: pooled kappa of the accepted codes, and recall@5 (share of the coder's applied codes among
    the model's 5 best-scored codes of that segment)."""
    out = {}
    in_top = _top5(S)
    for coder in test.coders:
        mask = test.coded_mask(coder)
        Y = test.labels(codes, coder)[mask]
        out[coder] = {"kappa": ac.agreement.cohen_kappa(A[mask].ravel(), Y.ravel()),
                      "recall5": float((in_top[mask] & Y).sum() / max(int(Y.sum()), 1)),
                      "suggested": int(A[mask].sum()), "applied": int(Y.sum())}
    return out


def zero_to_trained(book, coded, base: dict, sizes, draws: int, prior: dict | None = None) -> list[dict]:
    """Points (k, draw, model, coder metrics): ``codebook`` at every k (on the same test documents), ``blend``
    and ``default`` for k > 0. Draws use the seeds of ``agreement.learning_curve``."""
    codes = book.leaves
    prior = {**PRIOR, **(prior or {})}
    points = []
    with quiet():
        only = coding_model(book, base, prior).fit(transcripts=coded.segments)  # the study's text, no codes
        S0, A0 = full_scores(only, coded.segments, codes)
    for k in (0, *(k for k in sizes if 0 < k < len(coded.documents))):
        for d in range(draws if k else 1):
            train_docs = (set(np.random.default_rng(1000 * k + d).choice(coded.documents, k, replace=False).tolist())
                          if k else set())
            train = rows_of(coded, train_docs)
            test = coded.subset(~train)
            points.append({"k": k, "draw": d, "model": "codebook", **metrics(S0[~train], A0[~train], test, codes)})
            for name, ov in (("blend", prior), ("default", {})):
                if not k:
                    continue
                study = {"transcripts": coded.segments} if name == "blend" else {}
                with quiet():
                    model = coding_model(book, base, ov, seed=d).fit(coded.subset(train), **study)
                kept = {"kept": model.tuning_["model"]["chosen"]} if "model" in model.tuning_ else {}
                points.append({"k": k, "draw": d, "model": name, **kept,
                               **metrics(*full_scores(model, test.segments, codes), test, codes)})
        got = {m: np.mean([np.mean([p[c]["kappa"] for c in coded.coders]) for p in points
                           if p["k"] == k and p["model"] == m]) for m in ("codebook", "blend", "default")
               if any(p["k"] == k and p["model"] == m for p in points)}
        log(f"zero-to-trained k={k}: " + ", ".join(f"{m} kappa {v:.3f}" for m, v in got.items()))
    return points


def _document_counts(S: np.ndarray, A: np.ndarray, coded: ac.CodedCorpus, codes: list[str], coder: str):
    """Per document: true and false positives, false and true negatives, and the coder's codes among the 5
    best-scored and in all (segments the coder coded)."""
    in_top = _top5(S)
    mask, Y = coded.coded_mask(coder), coded.labels(codes, coder)
    docs = np.array([s.document for s in coded.segments], dtype=object)
    out = []
    for d in coded.documents:
        r = mask & (docs == d)
        a, y = A[r], Y[r]
        out.append([(a & y).sum(), (a & ~y).sum(), (~a & y).sum(), (~a & ~y).sum(), (in_top[r] & y).sum(), y.sum()])
    return np.asarray(out, dtype=np.float64)


def _kappa_recall(t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Pooled kappa and recall@5 of summed document counts (last axis as :func:`_document_counts`)."""
    tp, fp, fn, tn, hit, applied = np.moveaxis(t, -1, 0)
    n = tp + fp + fn + tn
    pe = ((tp + fp) * (tp + fn) + (fn + tn) * (fp + tn)) / n**2
    return ((tp + tn) / n - pe) / (1 - pe), hit / np.maximum(applied, 1)


def codebook_only_paired(book, coded, base: dict, prior: dict, seeds: int, resamples: int = 1000) -> list[dict]:
    """The codebook-only model with the library's prior and with ``prior`` (one fit per seed, the model's
    ``random_state``) on all of ``coded``: per coder kappa and recall@5, and each seed's difference
    from the library's prior ± its standard error over ``resamples`` bootstrap resamples of the documents."""
    codes = book.leaves
    rng = np.random.default_rng(0)
    idx = rng.integers(0, len(coded.documents), (resamples, len(coded.documents)))
    rows, counts = [], {}
    for name, settings, seed in [("library prior", {}, 0),
                                 *((f"{_settings_text(prior)}, seed {d}", prior, d) for d in range(seeds))]:
        with quiet():
            model = coding_model(book, base, PRIOR, settings, seed=seed).fit(transcripts=coded.segments)
            S, A = full_scores(model, coded.segments, codes)
        row = {"model": name, "settings": settings}
        for coder in coded.coders:
            t = counts[name, coder] = _document_counts(S, A, coded, codes, coder)
            k, r = _kappa_recall(t.sum(axis=0))
            row[coder] = {"kappa": float(k), "recall5": float(r)}
            if settings:
                kb, rb = _kappa_recall(counts["library prior", coder][idx].sum(axis=1))
                kv, rv = _kappa_recall(t[idx].sum(axis=1))
                base_row = rows[0][coder]
                row[coder] |= {"d_kappa": float(k - base_row["kappa"]), "se_kappa": float(np.std(kv - kb)),
                               "d_recall5": float(r - base_row["recall5"]), "se_recall5": float(np.std(rv - rb))}
        rows.append(row)
        log(f"codebook only, {name}: " + ", ".join(f"{c} kappa {row[c]['kappa']:.3f} recall@5 {row[c]['recall5']:.3f}"
                                                    for c in coded.coders))
    return rows


def _settings_text(settings: dict) -> str:
    flat = {**{k: v for k, v in settings.items() if k != "backend_params"},
            **{f"backend.{k}": v for k, v in settings.get("backend_params", {}).items()}}
    return "+".join(f"{k}={v}" for k, v in flat.items()) or "library prior"


def codebook_only_section(name: str, rows: list[dict], coders: list[str]) -> list[str]:
    L = [f"### {name}", "", "| prior | " + " | ".join(f"kappa vs {c} | Δ | recall@5 vs {c} | Δ" for c in coders) + " |",
         "|---" * (1 + 4 * len(coders)) + "|"]
    for row in rows:
        cells = [row["model"]]
        for c in coders:
            x = row[c]
            d = {m: f"{x['d_' + m]:+.3f} ± {x['se_' + m]:.3f}" if "d_kappa" in x else "" for m in ("kappa", "recall5")}
            cells += [fmt(x["kappa"]), d["kappa"], fmt(x["recall5"]), d["recall5"]]
        L.append("| " + " | ".join(cells) + " |")
    return L + [""]


def section(name: str, points: list[dict], coders: list[str], what: str = "documents") -> list[str]:
    """The report's table: per k and model, mean kappa and recall@5 per coder over draws; blend and codebook
    paired against the default (Δ kappa averaged over the coders, mean ± standard error, draws better)."""
    L = [f"### {name}", "",
         f"| k {what} | model | " + " | ".join(f"kappa vs {c} | recall@5 vs {c}" for c in coders)
         + " | Δ kappa vs default | better |", "|---" * (4 + 2 * len(coders)) + "|"]
    for k in sorted({p["k"] for p in points}):
        at = [p for p in points if p["k"] == k]
        base = {p["draw"]: p for p in at if p["model"] == "default"}
        for m in ("codebook", "blend", "default"):
            rows = [p for p in at if p["model"] == m]
            if not rows:
                continue
            kept = sum(r.get("kept") == "codebook alone" for r in rows)
            cells = [str(k), f"{m} (codebook alone kept in {kept} of {len(rows)})" if kept else m]
            for c in coders:
                cells += [fmt(float(np.mean([r[c]["kappa"] for r in rows]))),
                          fmt(float(np.mean([r[c]["recall5"] for r in rows])))]
            if base and m != "default":
                deltas = [np.mean([r[c]["kappa"] - base[r["draw"]][c]["kappa"] for c in coders]) for r in rows]
                cells += [paired(deltas), f"{sum(x > 0 for x in deltas)} of {len(deltas)}"]
            else:
                cells += ["", ""]
            L.append("| " + " | ".join(cells) + " |")
    return L + [""]


def run_codebook_only(args, interviews, cail, seeds: int) -> tuple[dict, list[str]]:
    """``--zero-only``: the codebook-only model with the library's prior and with ``--prior`` on both data
    sets (all their documents), paired."""
    folder = Path(args.embedding_cache) if getattr(args, "embedding_cache", None) else None
    res, lines = {}, ["## The codebook alone: the library's prior and `--prior`, paired", "",
                      "`CodingModel(book, backend='codebook.v1').fit(transcripts=...)` with no coded data, every "
                      "segment of the data set pre-coded, once with the library's prior and once per seed with the "
                      "settings of `--prior` (the seed is the model's `random_state`). Pooled kappa of the accepted "
                      "codes and recall@5 over every leaf code; Δ: the difference from the library's prior on the "
                      "same segments ± its standard error over 1,000 bootstrap resamples of the documents.", ""]
    for name, (book, coded) in (("interviews", interviews), ("cail", cail)):
        if coded is None:
            continue
        with EmbeddingCache(None if folder is None else folder / f"e5-{name}.npz"):
            rows = codebook_only_paired(book, coded, args.base, getattr(args, "prior", None) or {}, seeds)
        res[name] = {"documents": len(coded.documents), "segments": len(coded), "rows": rows}
        lines += codebook_only_section(f"{name} ({len(coded.documents)} documents, {len(coded)} segments)", rows,
                                       list(coded.coders))
    return res, lines


def run(args, interviews, cail, sizes, cail_sizes, draws: int) -> tuple[dict, list[str]]:
    """The section on both data sets: ``interviews`` and ``cail`` are (codebook, coded corpus) pairs."""
    folder = Path(args.embedding_cache) if getattr(args, "embedding_cache", None) else None
    res, lines = {}, ["## Zero to trained: the codebook prior and the blend", "",
                      "k coded documents drawn at random (the seeds of section 2), the rest pre-coded. `codebook`: "
                      "`CodingModel(book, backend='codebook.v1').fit(transcripts=...)` with no coded data (the "
                      "study's segments, uncoded, give its character view the IDF and each code's hub similarity; "
                      "the same model at every k, "
                      "scored on that k's test documents); `blend`: `backend='codebook.v1'` fitted on the k "
                      "documents with the same transcripts (the codebook alone where the blend does not beat it on "
                      "the k documents, its `fallback`); `default`: today's default on the same k documents. "
                      "Pooled kappa of the accepted "
                      "codes and recall@5 (share of the coder's applied codes among the model's 5 best-scored "
                      "codes of the segment) over every leaf code, mean over draws; Δ: paired against the default "
                      "on the same draws, averaged over the coders, ± standard error.", ""]
    prior = getattr(args, "prior", None) or {}
    for (name, (book, coded)), ks in ((("interviews", interviews), sizes), (("cail", cail), cail_sizes)):
        with EmbeddingCache(None if folder is None else folder / f"e5-{name}.npz"):
            pts = zero_to_trained(book, coded, args.base, ks, draws, prior)
            res[name] = {"sizes": list(ks), "draws": draws, "prior": {**PRIOR, **prior}, "points": pts,
                         "documents": len(coded.documents), "segments": len(coded)}
            lines += section(f"{name} ({len(coded.documents)} documents, {len(coded)} segments)", pts,
                             list(coded.coders))
    return res, lines
