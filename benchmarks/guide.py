"""How well does autocode place an interview's turns in the interview guide, and how much does the section say?

1. misleading-photos-dev, leave one interview out: the guide is recovered from the other 17 interviews
   (``autocode.guide.recover_guide``) and the held-out interview's turns are placed in it (``Guide.locate``).
   There is no written guide, so no ground truth: the placement of each held-out question is compared with the
   section of the most similar training question (nearest neighbour, ignoring order), and how often that
   nearest-neighbour placement steps back in the guide is counted (the monotone alignment never does). What the
   section says: for each coded answer of the held-out interview, the category the coder (E, then A) gave most
   often to the training answers of the same section, against the most frequent category of the same slice of
   the interview (the position feature, 5 slices) and of all answers.
2. interviews-unlabeled (three studies, answers only, one column per question): the questions of the columns
   are the guide (``Guide.from_questions``), each interviewee's answers in column order the interview; the monotone
   alignment of the answers alone (``answer_weight=1``) against the columns they came from, beside each answer's
   most similar question independently.

    python benchmarks/guide.py            # ~1 min on 2 cores
    python benchmarks/guide.py --quick    # the first 6 interviews only

Results: ``results/guide.md`` and ``.json`` (``guide-quick.*`` with ``--quick``): aggregate figures only.
"""

from __future__ import annotations

import csv
from collections import Counter

import numpy as np
from _common import INTERVIEWS, finish, header, load, log, meta, parser, write_result

from autocode.guide import Guide, question_turns, recover_guide
from autocode.model import make_inputs
from autocode.text import ChineseTokenizer

UNLABELED = "interviews-unlabeled"
STUDIES = ("bilibili", "jinchanchan", "myworld")


def majority(labels) -> str | None:
    return Counter(labels).most_common(1)[0][0] if labels else None


def pick(seq, rows) -> list:
    return [seq[i] for i in rows]


def leave_one_out(book, coded, normalize, docs) -> dict:
    inputs = make_inputs(coded.segments)
    groups = np.array(inputs.groups, dtype=object)
    depth = book.category_depth
    cats = {coder: [sorted({book.ancestor_at(c, depth) or c for c in (v or ())}) for v in coded.codings(coder)]
            for coder in coded.coders}
    bins = np.minimum((inputs.relative_positions() * 5).astype(int), 4)
    agree = back = n_q = 0
    sizes, visited = [], []
    hits = {coder: Counter() for coder in coded.coders}
    for d in docs:
        tr, te = np.flatnonzero(groups != d), np.flatnonzero(groups == d)
        guide = recover_guide(pick(inputs.texts, tr), pick(inputs.roles, tr), pick(inputs.groups, tr),
                              normalize=normalize)
        sizes.append(len(guide))
        sec_tr = guide.locate(pick(inputs.texts, tr), pick(inputs.roles, tr), pick(inputs.groups, tr))
        sec_te = guide.locate(pick(inputs.texts, te), pick(inputs.roles, te), pick(inputs.groups, te))
        visited.append(len(set(sec_te[sec_te >= 0].tolist())) / max(len(guide), 1))
        q_tr = question_turns(pick(inputs.texts, tr), pick(inputs.roles, tr))
        q_te = question_turns(pick(inputs.texts, te), pick(inputs.roles, te))
        if len(q_te) and len(q_tr):
            sim = guide.vectors(pick(inputs.texts, te[q_te])) @ guide.vectors(pick(inputs.texts, tr[q_tr])).T
            nn = sec_tr[q_tr[np.asarray(sim.argmax(axis=1)).ravel()]]
            agree += int((nn == sec_te[q_te]).sum())
            back += int((np.diff(nn) < 0).sum())
            n_q += len(q_te)
        for coder, c in cats.items():
            answers = [i for i in tr if inputs.roles[i] == "participant" and c[i]]
            by_sec, by_bin = {}, {}
            for i, s in zip(tr, sec_tr):
                if i in set(answers):
                    by_sec.setdefault(s, []).extend(c[i])
                    by_bin.setdefault(bins[i], []).extend(c[i])
            overall = majority([x for i in answers for x in c[i]])
            for i, s in zip(te, sec_te):
                if inputs.roles[i] == "participant" and c[i]:
                    h = hits[coder]
                    h["n"] += 1
                    h["section"] += majority(by_sec.get(s, [])) in c[i]
                    h["slice"] += majority(by_bin.get(bins[i], [])) in c[i]
                    h["overall"] += overall in c[i]
    return {"interviews": len(docs), "guide_sections": sizes, "questions": n_q,
            "same_as_nearest_question": agree / max(n_q, 1), "nearest_question_steps_back": back / max(n_q, 1),
            "sections_visited": float(np.mean(visited)),
            "category_hit": {coder: {k: h[k] / max(h["n"], 1) for k in ("section", "slice", "overall")} | {"n": h["n"]}
                             for coder, h in hits.items()}}


def outlines(data_dir, normalize, quick: bool) -> dict:
    out = {}
    for study in STUDIES:
        folder = data_dir / UNLABELED
        with open(folder / f"{study}.csv", encoding="utf-8-sig", newline="") as fh:
            head, *rows = list(csv.reader(fh))
        questions = [q.strip() for q in head[1:]]  # the table's own columns (an outline file may differ)
        guide = Guide.from_questions(questions, normalize=normalize)
        dp = nn = n = 0
        for row in rows[: 5 if quick else None]:
            answers = [(j, a) for j, a in enumerate(row[1: len(questions) + 1]) if a.strip()]
            if len(answers) < 2:
                continue
            texts = [a for _, a in answers]
            truth = np.array([j for j, _ in answers])
            placed = guide.locate(texts, ["participant"] * len(texts), answer_weight=1.0)
            dp += int((placed == truth).sum())
            nn += int((guide.similarity(texts).argmax(axis=1) == truth).sum())
            n += len(texts)
        out[study] = {"questions": len(questions), "answers": n, "monotone": dp / max(n, 1), "independent": nn / max(n, 1)}
        log(f"{study}: monotone {dp / max(n, 1):.3f}, independent {nn / max(n, 1):.3f} ({n} answers)")
    return out


def main(argv=None) -> int:
    ap = parser(__doc__)
    args = ap.parse_args(argv)
    m = meta("guide.py", argv)
    normalize = ChineseTokenizer().normalize
    book, coded = load(args.data_dir, INTERVIEWS)
    docs = coded.documents[:6] if args.quick else coded.documents
    res = {"loo": leave_one_out(book, coded, normalize, docs)}
    log(f"{INTERVIEWS}: {res['loo']}")
    if (args.data_dir / UNLABELED).is_dir():
        res["outlines"] = outlines(args.data_dir, normalize, args.quick)
    finish(m)
    r = res["loo"]
    L = header("Placing turns in the interview guide" + (" (quick run)" if args.quick else ""), m)
    L += [f"## 1. {INTERVIEWS}, leave one interview out", "",
          f"Guide recovered from the other interviews: {min(r['guide_sections'])}-{max(r['guide_sections'])} "
          f"sections. {r['questions']} held-out questions: placed in the section of their most similar training "
          f"question {r['same_as_nearest_question']:.1%} of the time; that nearest-neighbour placement steps back "
          f"in the guide at {r['nearest_question_steps_back']:.1%} of the questions (the monotone alignment never "
          f"does). A held-out interview visits {r['sections_visited']:.0%} of the sections on average.", "",
          "What the section says: share of coded held-out answers whose categories include the category most "
          "often given to training answers of ...", "",
          "| coder | answers | the same guide section | the same fifth of the interview | all answers |",
          "|---|---|---|---|---|"]
    for coder, h in r["category_hit"].items():
        L.append(f"| {coder} | {h['n']} | {h['section']:.3f} | {h['slice']:.3f} | {h['overall']:.3f} |")
    L.append("")
    if "outlines" in res:
        L += [f"## 2. {UNLABELED}: answers alone placed in the guide", "",
              "Share of answers placed at their own question: monotone alignment of the interview's answers vs each "
              "answer's most similar question on its own.", "",
              "| study | questions | answers | monotone | independent |", "|---|---|---|---|---|"]
        for study, o in res["outlines"].items():
            L.append(f"| {study} | {o['questions']} | {o['answers']} | {o['monotone']:.3f} | {o['independent']:.3f} |")
    write_result(args.out_dir, "guide-quick" if args.quick else "guide", m, L, res)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
