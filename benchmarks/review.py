"""The review loop, simulated with the coders' own decisions: review effort, learning curves, faithful evidence.

On each data set, grouped partitions (``--seeds``) each hold out a third of the documents as unseen interviews:

1. review effort: the model trained on the rest suggests codes for the unseen documents; a reviewer answers
   yes/no to each suggestion and adds the codes it missed, against coding from scratch (one decision per code
   applied); recall@k: the share of the coder's codes among the model's k best-scoring codes of the segment;
2. learning curves (pooled kappa on the unseen documents, codes x segments) from a seed of hand-coded
   documents, adding the same number of hand-coded segments per round chosen by ``next_to_code``, at random,
   or as whole interviews in order; and rounds of reviewed suggestions (one more interview pre-coded per round,
   its suggestions accepted or rejected as the coder's codes say, trained on with ``fit(review=...)``);
3. faithfulness: deleting the evidence words of a suggestion lowers its raw score more than deleting as many
   other words of the segment.

Usage: python benchmarks/review.py [--quick]
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common as C  # noqa: E402

import autocode as ac  # noqa: E402
from autocode.agreement import cohen_kappa  # noqa: E402


def kappa(model, test: ac.CodedCorpus, target: str) -> float:
    Y = test.labels(model.codes_, target)
    return float(cohen_kappa(model.predict(test.segments).ravel(), Y.ravel()))


def effort(model, test: ac.CodedCorpus, target: str) -> dict:
    sug = model.suggest(test.segments)
    gold = test.target_codings(target)
    ranks = {1: 0, 3: 0, 5: 0}
    n_gold = with_sug = from_scratch = correct = suggested = 0
    for i, codes in enumerate(gold):
        codes = set(codes or ()) & set(model.codes_)
        order = [c for c, _, _ in sug.top(i, len(model.codes_))]
        for k in ranks:
            ranks[k] += len(codes & set(order[:k]))
        acc = set(sug.codes_for(i))
        n_gold += len(codes)
        suggested += len(acc)
        correct += len(acc & codes)
        with_sug += len(acc) + len(codes - acc)  # a yes/no per suggestion, a look-up per missed code
        from_scratch += len(codes)  # a look-up in the codebook per code applied
    return {"segments": len(test), "coder_codes": n_gold, "suggested": suggested, "correct_suggestions": correct,
            "decisions_with_suggestions": with_sug, "lookups_from_scratch": from_scratch,
            "lookups_with_suggestions": n_gold - correct,
            **{f"recall@{k}": v / max(n_gold, 1) for k, v in ranks.items()}}


def faithfulness(model, test: ac.CodedCorpus, n_pairs: int, seed: int) -> dict:
    rng = np.random.default_rng(seed)
    sug = model.suggest(test.segments)
    pairs = [(i, c) for i in range(len(test)) for c in sug.codes_for(i)]
    pairs = [pairs[j] for j in rng.permutation(len(pairs))[:n_pairs]]
    from autocode.text import ChineseTokenizer

    tok = ChineseTokenizer(script="none")
    wins, d_ev, d_other = 0, [], []
    for i, code in pairs:
        seg = test.segments[i]
        ev = model.explain([seg], codes=[code], k=3)[0][code]
        spans = [(w.start, w.end) for w in ev.words if w.start is not None]
        toks, cursor = [], 0
        for w in tok.words(seg.text, normalized=True):
            at = seg.text.find(w, cursor)
            cursor = at + len(w)
            toks.append((at, at + len(w)))
        n_ev = sum(1 for a, b in toks if any(a < y and x < b for x, y in spans))
        others = [t for t in toks if not any(t[0] < y and x < t[1] for x, y in spans)]
        if not spans or not others:
            continue
        pick = [others[j] for j in rng.permutation(len(others))[:n_ev]]
        j = model.codes_.index(code)

        def score(drop, seg=seg, j=j):
            keep = np.ones(len(seg.text), bool)
            for a, b in drop:
                keep[a:b] = False
            text = "".join(ch for ch, k in zip(seg.text, keep) if k)
            return model.decision_function([ac.Segment(seg.document, seg.segment, text, seg.speaker)])[0, j]

        base = model.decision_function([seg])[0, j]
        a, b = base - score(spans), base - score(pick)
        d_ev.append(a)
        d_other.append(b)
        wins += a > b
    n = len(d_ev)
    return {"pairs": n, "evidence_drop_larger": wins / max(n, 1), "mean_drop_evidence": float(np.mean(d_ev or [0])),
            "mean_drop_other": float(np.mean(d_other or [0]))}


def curves(book, base, train: ac.CodedCorpus, test: ac.CodedCorpus, target: str, seed_docs: int, batch: int,
           rounds: int, seed: int) -> dict:
    docs = train.documents
    seed_set = set(docs[:seed_docs])
    known_rows = {s.key for s in train.segments if s.document in seed_set}
    out: dict[str, list] = {}
    for strategy in ("next", "random", "interviews"):
        chosen = set(known_rows)
        rng = np.random.default_rng(seed)
        points = []
        for r in range(rounds + 1):
            sub = train.subset(np.array([s.key in chosen for s in train.segments]))
            with C.quiet():
                model = C.coding_model(book, base, seed=seed).fit(sub)
            points.append({"coded_segments": len(chosen), "kappa": kappa(model, test, target)})
            pool = [s for s in train.segments if s.key not in chosen]
            if r == rounds or not pool:
                break
            if strategy == "next":
                pick, _ = ac.next_to_code(model, pool, n=batch)
            elif strategy == "random":
                pick = [pool[j] for j in rng.permutation(len(pool))[:batch]]
            else:
                pick = pool[:batch]  # whole interviews, in order
            chosen |= {s.key for s in pick}
        out[strategy] = points
    # rounds of reviewed suggestions: one more interview per round, its suggestions answered by the coder
    sub = train.subset(np.array([s.document in seed_set for s in train.segments]))
    review = ac.Review([])
    gold = dict(zip([s.key for s in train.segments], train.target_codings(target)))
    points = []
    rest = [d for d in docs if d not in seed_set]
    for r in range(rounds + 1):
        with C.quiet():
            model = C.coding_model(book, base, seed=seed).fit(sub, review=review)
        points.append({"reviewed_documents": r, "decisions": sum(review.counts()[k] for k in ("accepted", "rejected")),
                       "kappa": kappa(model, test, target)})
        if r == len(rest) or r == rounds:
            break
        segs = [s for s in train.segments if s.document == rest[r]]
        sug = model.suggest(segs)
        for i, s in enumerate(segs):
            for c in sug.codes_for(i):
                (review.accepted if c in (gold[s.key] or ()) else review.rejected).setdefault(s.key, set()).add(c)
        review.segments.extend(segs)
    out["reviewed_suggestions"] = points
    return out


def run(name: str, book, coded, base, target, *, quick: bool, seed: int = 0) -> dict:
    train_docs, test_docs = C.partitions(coded, 3, seed)[0]
    train = coded.subset(C.rows_of(coded, train_docs))
    test = coded.subset(C.rows_of(coded, test_docs))
    C.log(f"{name}: {len(train_docs)} training, {len(test_docs)} unseen documents")
    with C.quiet():
        model = C.coding_model(book, base, seed=seed).fit(train)
    res = {"train_documents": len(train_docs), "test_documents": len(test_docs),
           "effort": effort(model, test, target),
           "faithfulness": faithfulness(model, test, 20 if quick else 200, seed)}
    C.log(f"{name}: effort and faithfulness done")
    n_docs = len(train.documents)
    seg_per_doc = max(1, len(train) // max(n_docs, 1))
    res["curves"] = curves(book, base, train, test, target, seed_docs=max(2, n_docs // 4) if n_docs > 4 else 1,
                           batch=seg_per_doc, rounds=2 if quick else min(6, n_docs - max(2, n_docs // 4)),
                           seed=seed)
    return res


def summarize(per: list[dict]) -> dict:
    """Over partitions: recall@k and faithfulness mean and sd; per learning-curve round the mean kappa, and the
    paired difference of each strategy from random (mean, its standard error, partitions where it was better)."""
    def ms(values):
        v = np.asarray(values, dtype=float)
        return {"mean": float(v.mean()), "sd": float(v.std(ddof=1)) if len(v) > 1 else 0.0}

    out = {"partitions": len(per)}
    for k in ("recall@1", "recall@3", "recall@5"):
        out[k] = ms([r["effort"][k] for r in per])
    out["evidence_drop_larger"] = ms([r["faithfulness"]["evidence_drop_larger"] for r in per])
    n_rounds = min(len(r["curves"]["random"]) for r in per)
    curves_out = {}
    for strategy in ("next", "random", "interviews"):
        rows = []
        for j in range(n_rounds):
            k = np.array([r["curves"][strategy][j]["kappa"] for r in per])
            base = np.array([r["curves"]["random"][j]["kappa"] for r in per])
            d = k - base
            rows.append({"round": j, "coded_segments": float(np.mean([r["curves"][strategy][j]["coded_segments"]
                                                                      for r in per])),
                         "kappa": float(k.mean()), "minus_random": float(d.mean()),
                         "se": float(d.std(ddof=1) / np.sqrt(len(d))) if len(d) > 1 else 0.0,
                         "better": int((d > 0).sum())})
        curves_out[strategy] = rows
    out["curves"] = curves_out
    return out


def main(argv=None) -> int:
    ap = C.parser(__doc__)
    ap.add_argument("--cail-docs", type=int, default=60, help="CAIL documents sampled (0 = all)")
    ap.add_argument("--seeds", type=int, default=None, help="partitions of each data set (default 5; 1 with --quick)")
    args = ap.parse_args(argv)
    seeds = args.seeds or (1 if args.quick else 5)
    m = C.meta("review.py", argv)
    base = {"tune": False, "n_splits": 3, **({"min_examples": 1} if args.quick else {}), **args.base}
    results = {}
    book, coded = C.load(args.data_dir, C.INTERVIEWS)
    per = [run(C.INTERVIEWS, book, coded, base, "union", quick=args.quick, seed=s) for s in range(seeds)]
    results[C.INTERVIEWS] = {**per[0], "partitions": per, "summary": summarize(per)}
    book, coded = C.load(args.data_dir, C.CAIL)
    coded = C.sample_documents(coded, 12 if args.quick else args.cail_docs)
    per = [run(C.CAIL, book, coded, base, "union", quick=args.quick, seed=s) for s in range(seeds)]
    results[C.CAIL] = {**per[0], "partitions": per, "summary": summarize(per)}
    C.finish(m)
    lines = C.header("The review loop (simulated with the coders' decisions)", m)
    lines += [f"Settings differing from the library defaults: {base} (tune off, 3 folds, to fit the run on 2 "
              f"cores). {seeds} grouped partition(s) per data set, each holding out a third of the documents as "
              "unseen; the first tables are the first partition, the summary is over all of them.", ""]
    lines += ["## Over all partitions", "",
              "| data | partitions | recall@1 | recall@3 | recall@5 | evidence drop larger |", "|---|---|---|---|---|---|"]
    for name, r in results.items():
        s_ = r["summary"]
        cell = lambda d: f"{C.fmt(d['mean'])} ± {C.fmt(d['sd'])}"  # noqa: E731
        lines.append(f"| {name} | {s_['partitions']} | {cell(s_['recall@1'])} | {cell(s_['recall@3'])} | "
                     f"{cell(s_['recall@5'])} | {cell(s_['evidence_drop_larger'])} |")
    lines += ["", "Learning curves, mean over partitions: pooled kappa after each round of hand coding, and the "
              "paired difference from random choice at the same round (mean ± standard error; partitions where "
              "the strategy was better).", ""]
    for name, r in results.items():
        lines += [f"### {name}", "", "| strategy | round | coded segments | kappa | minus random | better |",
                  "|---|---|---|---|---|---|"]
        for strategy, rows in r["summary"]["curves"].items():
            for row in rows:
                lines.append(f"| {strategy} | {row['round']} | {row['coded_segments']:.0f} | {C.fmt(row['kappa'])} | "
                             f"{row['minus_random']:+.3f} ± {row['se']:.3f} | {row['better']}/{r['summary']['partitions']} |")
        lines.append("")
    lines += ["## Review effort and recall@k on unseen documents (first partition)", "",
              "| data | segments | coder's codes | suggested | correct | decisions with suggestions | "
              "look-ups from scratch | look-ups with suggestions | recall@1 | recall@3 | recall@5 |",
              "|---|---|---|---|---|---|---|---|---|---|---|"]
    for name, r in results.items():
        e = r["effort"]
        lines.append(f"| {name} | {e['segments']} | {e['coder_codes']} | {e['suggested']} | "
                     f"{e['correct_suggestions']} | {e['decisions_with_suggestions']} | {e['lookups_from_scratch']} | "
                     f"{e['lookups_with_suggestions']} | {C.fmt(e['recall@1'])} | {C.fmt(e['recall@3'])} | "
                     f"{C.fmt(e['recall@5'])} |")
    lines += ["", "## Learning curves, first partition: pooled kappa on the unseen documents", ""]
    for name, r in results.items():
        lines += [f"### {name}", "", "| strategy | coded segments -> kappa |", "|---|---|"]
        for strategy, pts in r["curves"].items():
            key = "decisions" if strategy == "reviewed_suggestions" else "coded_segments"
            lines.append(f"| {strategy} | " + ", ".join(f"{p[key]}: {C.fmt(p['kappa'])}" for p in pts) + " |")
        lines.append("")
    lines += ["(reviewed_suggestions: the count is the reviewer's yes/no decisions, on top of the seed interviews.)",
              "", "## Faithfulness of the evidence words (first partition)", "",
              "| data | pairs | evidence drop larger | mean drop, evidence | mean drop, as many other words |",
              "|---|---|---|---|---|"]
    for name, r in results.items():
        f = r["faithfulness"]
        lines.append(f"| {name} | {f['pairs']} | {C.fmt(f['evidence_drop_larger'])} | "
                     f"{C.fmt(f['mean_drop_evidence'])} | {C.fmt(f['mean_drop_other'])} |")
    C.write_result(args.out_dir, "review-quick" if args.quick else "review", m, lines,
                   {"settings": base, "results": results})
    return 0


if __name__ == "__main__":
    sys.exit(main())
