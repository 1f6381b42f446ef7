"""The bundled example project, end to end with autocode's Python API.

An illustrative study of "一核多元" linked community governance (see README.md here: the interviews and their
coding were written for this example and are fictional). Two coders coded 12 interviews with a four-level
codebook (核心范畴 -> 主范畴 -> 范畴 -> 初始概念). The script

1. reads the codebook and the hand coding;
2. measures how well the two coders agree;
3. trains a coding model on the first 8 interviews;
4. pre-codes the other 4 and sets model-human agreement beside human-human agreement on them;
5. pre-codes 3 new, uncoded interviews and writes ``precoded.csv`` (and ``precoded.qdpx`` for a QDA program);
6. shows a few suggestions with their scores and categories.

Run it from anywhere (about 10 seconds)::

    python examples/community-governance/run.py              # writes examples/community-governance/out/
    python examples/community-governance/run.py --out /tmp/x
"""

from __future__ import annotations

import argparse
import sys
import time
import unicodedata
import warnings
from pathlib import Path

import autocode as ac
from autocode.reliability import measure_agreement

HERE = Path(__file__).resolve().parent
N_TRAIN = 8  # interviews to learn from; the rest of the coded interviews are held out
LEVELS = ["核心范畴", "主范畴", "范畴", "初始概念"]  # codebook depth 0..3


def _kappas(report) -> dict[frozenset, dict[str, float]]:
    """Cohen's kappa per pair of coders: {pair: {"pooled": value, code: value, ...}}."""
    out: dict[frozenset, dict[str, float]] = {}
    for r in report.rows:
        if r["statistic"] == "cohen_kappa" and r["scope"] in ("pooled", "code"):
            key = "pooled" if r["scope"] == "pooled" else r["code"]
            out.setdefault(frozenset(r["coders"].split("~")), {})[key] = r["value"]
    return out


def _f(x: float | None) -> str:
    return "–" if x is None or x != x else f"{x:.3f}"


def _pad(text: str, width: int) -> str:
    """Left-justify for a terminal, counting a Chinese character as two columns."""
    cols = sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)
    return text + " " * max(width - cols, 0)


def _show(sug, i: int, book, top: int = 3) -> None:
    seg = sug.segments[i]
    text = seg.text if len(seg.text) <= 48 else seg.text[:47] + "…"
    print(f"   {seg.document}/{seg.segment} {seg.speaker}：{text}")
    for code, score, accepted in sug.top(i, top):
        if score >= 0.2 or accepted or top == 1:
            path = " < ".join(book[c].name for c in book.ancestors(code)[:2])
            print(f"      {'*' if accepted else ' '} {score:.2f} {code} {book[code].name}  ({path})")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run the community-governance example of autocode.")
    parser.add_argument("--out", default=str(HERE / "out"), help="output folder (default: out/ beside this file)")
    args = parser.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    # The agreement reports draw their plot with matplotlib's default font, which has no Chinese glyphs: the
    # coder names show as boxes in the .png (the .md tables are fine). Keep the console free of that warning.
    warnings.filterwarnings("ignore", message=r"Glyph \d+ .* missing from font", category=UserWarning)

    # 1. codebook and hand coding -----------------------------------------------------------------------------
    book = ac.Codebook.read_csv(HERE / "codebook.csv")
    coded = ac.read_coded(HERE / "coded.csv", codebook=book)
    a, b = coded.coders
    print("== 1. Codebook and hand coding (illustrative data, written for this example)")
    per_level = [sum(1 for c in book if book.depth(c.id) == d) for d in range(book.max_depth + 1)]
    print("   codebook: " + " -> ".join(f"{n} {LEVELS[d]}" for d, n in enumerate(per_level)))
    n_coded = sum(1 for codes in coded.codings(a) if codes)
    print(f"   {len(coded.documents)} interviews, {len(coded)} segments (speaker turns), coders {a} and {b}; "
          f"{n_coded} answers carry codes")

    # 2. human-human agreement --------------------------------------------------------------------------------
    humans = measure_agreement(coded, uncoded="drop", n_bootstrap=1000, random_state=0)
    humans.write(out / "agreement_coders.md")
    row = humans.row("cohen_kappa")
    print(f"\n== 2. Agreement between the coders, all 12 interviews ({humans.n_units} segments that either "
          "coded; open codes)")
    print(f"   pooled Cohen's kappa {row['value']:.3f} (95% CI {row['ci_low']:.2f}-{row['ci_high']:.2f}, bootstrap "
          f"over interviews); Krippendorff's alpha {humans.value('krippendorff_alpha'):.3f}; "
          f"{len(humans.disagreements)} code decisions differ")
    print(f"   report: {out / 'agreement_coders.md'}")

    # 3. train on the first interviews ----------------------------------------------------------------------
    train_docs = coded.documents[:N_TRAIN]
    train = coded.subset([s.document in train_docs for s in coded.segments])
    test = coded.subset([s.document not in train_docs for s in coded.segments])
    model = ac.CodingModel(book, backend="tfidf.v1", random_state=0).fit(train)
    model.save(out / "model")
    print(f"\n== 3. Model trained on {train_docs[0]}-{train_docs[-1]} ({model.n_train_segments_} segments, "
          f"both coders' codes pooled)")
    print(f"   learned {len(model.codes_)} open codes" + (f"; too rare to learn: {', '.join(model.rare_codes_)}"
                                                          if model.rare_codes_ else "") + f"; saved to {out / 'model'}")

    # 4. pre-code the held-out coded interviews and compare ------------------------------------------------------
    held = model.suggest(test.segments)
    compared = test.with_codings(model.model_name, [set(held.codes_for(i)) for i in range(len(held))])
    m = model.model_name
    pairs = [(f"{a}~{b}", frozenset((a, b))), (f"model~{a}", frozenset((m, a))),
             (f"model~{b}", frozenset((m, b)))]
    test_docs = test.documents
    print(f"\n== 4. Held-out interviews {test_docs[0]}-{test_docs[-1]}: model-human beside human-human "
          "(pooled Cohen's kappa)")
    print("   " + _pad("", 24) + "".join(_pad(name, 18) for name, _ in pairs))
    levels = [("初始概念 (open codes)", "code"), ("范畴 (categories)", 2), ("主范畴 (main categories)", 1)]
    by_category = None
    for label, by in levels:
        k = _kappas(measure_agreement(compared, by=by, uncoded="drop"))
        by_category = k if by == 2 else by_category
        print("   " + _pad(label, 24) + "".join(_pad(_f(k[p].get("pooled")), 18) for _, p in pairs))
    print("   per 范畴:")
    for cat in [c for c in book.ids if book.depth(c) == 2]:
        print("     " + _pad(book[cat].name, 22) + "".join(_pad(_f(by_category[p].get(cat)), 18) for _, p in pairs))
    measure_agreement(compared, uncoded="drop").write(out / "agreement_heldout.md")
    print(f"   (segments that no one coded are left out; report: {out / 'agreement_heldout.md'})")

    # 5. pre-code new interviews ---------------------------------------------------------------------------------
    documents = ac.read_documents(HERE / "new")
    segments = ac.read_transcripts(HERE / "new")
    sug = model.suggest(segments)
    ac.write_suggestions(out / "precoded.csv", sug, documents=documents)
    written = [out / "precoded.csv"]
    try:
        ac.write_suggestions(out / "precoded.qdpx", sug, documents=documents)
        written.append(out / "precoded.qdpx")
    except ac.AutocodeError as err:  # the CSV is the main output; say why the project file is missing
        print(f"   (precoded.qdpx not written: {err})", file=sys.stderr)
    n_with = int(sug.accepted.any(axis=1).sum())
    print(f"\n== 5. Pre-coded {len(documents)} new interviews: {len(sug)} segments, {n_with} with suggestions")
    print("   wrote " + ", ".join(str(p) for p in written))

    # 6. a few suggestions ------------------------------------------------------------------------------------
    print("\n== 6. Example suggestions (score = calibrated probability; * = above the code's threshold)")
    firsts: dict[str, int] = {}
    for i, seg in enumerate(sug.segments):  # the first two suggested segments of each new interview
        if sug.codes_for(i) and firsts.get(seg.document, 0) < 2:
            firsts[seg.document] = firsts.get(seg.document, 0) + 1
            _show(sug, i, book)
    answers = [i for i, seg in enumerate(sug.segments) if seg.speaker == "受访者" and len(seg.text) >= 40]
    weakest = sorted(answers, key=lambda i: sug.scores[i].max())[:3]
    print("   Answers that fit no code well (lowest best score) - candidates for new open codes:")
    for i in sorted(weakest):
        _show(sug, i, book, top=1)
    print(f"\nDone in {time.perf_counter() - t0:.1f} s. Open {out / 'precoded.csv'} in a spreadsheet, or import "
          f"{out / 'precoded.qdpx'} into a QDA program, to review the suggestions.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
