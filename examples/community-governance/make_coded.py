"""Write coded.csv: the two illustrative coders' hand coding of transcripts/C01.txt ... C12.txt.

The coding decisions are written out below, so that they can be reviewed and the table rebuilt:

* ``CODER_A`` holds what 研究者A applied to each segment, as ``{document: {segment: "code;code"}}``.
  Segments not listed (the interviewers' questions, small talk, the 【说明】 line) were read and left
  without codes.
* ``B_DIFFERS`` lists every segment where 研究者B decided otherwise, with B's codes. Elsewhere B applied
  the same codes as A. B sometimes misses a second code, picks a sibling code, or codes a segment A left
  uncoded, as a second coder does.

Segment ids come from autocode's own segmentation (``autocode.read_transcripts``): the 【说明】 line is
segment 1, the first question segment 2, the first answer segment 3, and so on. Every coded segment is
checked to be an interviewee's turn.

The transcripts and the coding are illustrative, written for this example; see README.md.

Run from anywhere::

    python examples/community-governance/make_coded.py           # writes coded.csv beside this file
    python examples/community-governance/make_coded.py --show    # also prints each coded answer
"""

from __future__ import annotations

import argparse
from pathlib import Path

import autocode as ac

HERE = Path(__file__).resolve().parent
CODERS = ("研究者A", "研究者B")

# 研究者A's coding: document -> segment -> codes (open codes only, ";"-separated).
CODER_A: dict[str, dict[str, str]] = {
    "C01": {"5": "emb-party-branch", "7": "emb-cross-post", "9": "emp-resources", "11": "dem-member-vanguard",
            "13": "plat-deliberation", "17": "inst-rules", "19": "svc-targeted-groups",
            "21": "ml-dept-response;emp-authority", "23": "cap-incentives"},
    "C02": {"5": "emb-party-branch", "7": "svc-targeted-groups", "9": "cap-training", "11": "plat-deliberation",
            "13": "dem-member-vanguard", "15": "cap-incentives;part-residents", "17": "part-residents",
            "19": "dem-model-building", "21": "ml-grid"},
    "C03": {"5": "inst-joint-meeting", "7": "inst-joint-meeting", "9": "emb-cross-post", "11": "emp-authority",
            "13": "plat-space", "15": "plat-deliberation;part-units", "17": "part-units", "19": "cap-training",
            "21": "ml-grid", "23": "dem-model-building"},
    "C04": {"5": "emb-party-branch", "7": "emb-cross-post", "9": "plat-deliberation",
            "11": "plat-deliberation;part-residents", "13": "part-social-org", "15": "part-social-org",
            "17": "emp-resources", "19": "ml-dept-response;emp-authority", "21": "cap-training",
            "23": "svc-needs-list", "25": "part-units"},
    "C05": {"3": "part-residents", "5": "part-social-org", "7": "plat-space", "9": "plat-space",
            "11": "plat-deliberation", "13": "cap-incentives", "15": "dem-member-vanguard", "17": "emb-cross-post",
            "19": "svc-needs-list", "21": "ml-grid", "23": "inst-rules"},
    "C06": {"3": "part-social-org", "5": "svc-needs-list;part-social-org", "7": "emp-resources;emp-authority",
            "9": "emb-party-branch", "11": "svc-targeted-groups", "13": "cap-training", "15": "part-residents",
            "17": "inst-joint-meeting;ml-dept-response", "19": "ml-dept-response", "21": "dem-model-building",
            "23": "cap-incentives"},
    "C07": {"5": "emb-party-branch", "7": "emb-cross-post", "11": "inst-rules", "13": "dem-member-vanguard",
            "17": "svc-targeted-groups;part-residents", "19": "inst-joint-meeting", "21": "emp-resources",
            "23": "plat-space", "25": "cap-training;cap-incentives"},
    "C08": {"7": "ml-grid", "9": "svc-needs-list", "11": "plat-deliberation", "13": "inst-rules",
            "15": "cap-training", "17": "cap-incentives;dem-model-building", "19": "svc-targeted-groups",
            "21": "part-units", "23": "dem-member-vanguard"},
    "C09": {"5": "emb-party-branch;emb-cross-post", "9": "dem-member-vanguard", "11": "inst-joint-meeting",
            "13": "inst-rules", "15": "ml-dept-response", "17": "part-units", "19": "cap-training",
            "21": "cap-incentives"},
    "C10": {"5": "emb-party-branch", "7": "emp-resources;plat-space", "9": "part-residents",
            "11": "part-units;svc-needs-list", "13": "plat-deliberation", "15": "inst-rules",
            "17": "dem-model-building", "19": "emp-authority", "21": "cap-incentives"},
    "C11": {"3": "emb-cross-post", "7": "plat-deliberation", "9": "inst-joint-meeting", "11": "part-residents",
            "13": "svc-targeted-groups", "15": "cap-training", "17": "dem-member-vanguard",
            "19": "part-social-org", "21": "inst-rules"},
    "C12": {"3": "part-social-org", "5": "part-social-org", "9": "svc-needs-list", "11": "part-units",
            "13": "emb-cross-post", "15": "ml-dept-response;svc-targeted-groups",
            "17": "cap-incentives;dem-model-building", "19": "svc-targeted-groups", "21": "ml-grid"},
}

# Where 研究者B decided otherwise: (document, segment) -> B's codes ("" = none). Why, in a word, on the right.
B_DIFFERS: dict[tuple[str, str], str] = {
    ("C01", "21"): "ml-dept-response",                      # missed the scoring of departments
    ("C01", "23"): "",                                       # read it as a complaint, not as incentives
    ("C02", "5"): "emb-party-branch;dem-member-vanguard",    # added: the badge as vanguard role
    ("C02", "23"): "emp-authority",                          # coded the monthly scoring of the property firm
    ("C03", "7"): "inst-joint-meeting;inst-rules",           # added: the meeting became a written rule
    ("C03", "25"): "inst-joint-meeting",                     # coded the effect of the joint meeting
    ("C04", "15"): "part-residents",                         # sibling: residents rather than their groups
    ("C04", "17"): "emp-resources;plat-space",               # added: the building handed over
    ("C05", "5"): "part-residents",                          # sibling
    ("C05", "13"): "cap-incentives;dem-model-building",      # added: the star-volunteer title
    ("C06", "7"): "emp-resources",                           # missed the say over what to buy
    ("C06", "9"): "emb-cross-post",                          # sibling
    ("C07", "5"): "emb-party-branch;ml-grid",                # added: the new grid
    ("C07", "11"): "inst-rules;plat-deliberation",           # added: the householder meetings
    ("C08", "17"): "cap-incentives",                         # missed the honour roll
    ("C09", "9"): "dem-member-vanguard;ml-grid",             # added
    ("C09", "21"): "cap-incentives;dem-model-building",      # added: the photo in the hall
    ("C10", "7"): "plat-space",                              # missed the funding and posts
    ("C10", "11"): "part-units",                             # missed the needs list
    ("C11", "7"): "plat-deliberation;svc-needs-list",        # added: the questionnaire
    ("C11", "11"): "",                                       # read it as small talk
    ("C12", "7"): "part-social-org",                         # coded the incubation count
    ("C12", "13"): "emb-party-branch",                       # sibling
}


def build(transcripts: Path = HERE / "transcripts", codebook: Path = HERE / "codebook.csv") -> ac.CodedCorpus:
    """The coded corpus: every segment of every transcript, coded by both coders (empty = no code)."""
    book = ac.Codebook.read_csv(codebook)
    segments = ac.read_transcripts(transcripts)
    by_key = {s.key: s for s in segments}
    coder_a = {(doc, seg): codes for doc, segs in CODER_A.items() for seg, codes in segs.items()}
    for key in [*coder_a, *B_DIFFERS]:
        if key not in by_key:
            raise SystemExit(f"{key}: no such segment in {transcripts}")
        if by_key[key].speaker != "受访者":
            raise SystemExit(f"{key}: coded, but it is the {by_key[key].speaker or 'unlabelled'} turn "
                             f"{by_key[key].text[:20]!r}; the segment numbers are off")
    a = {s.key: set(ac.io.split_codes(coder_a.get(s.key, ""))) for s in segments}
    b = {k: set(ac.io.split_codes(B_DIFFERS[k])) if k in B_DIFFERS else set(v) for k, v in a.items()}
    return ac.CodedCorpus(segments, {CODERS[0]: a, CODERS[1]: b}, codebook=book)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default=str(HERE / "coded.csv"), help="where to write (default: coded.csv here)")
    parser.add_argument("--show", action="store_true", help="print every coded answer with both coders' codes")
    args = parser.parse_args(argv)
    corpus = build()
    ac.write_coded(args.out, corpus)
    if args.show:
        for s, ca, cb in zip(corpus.segments, *(corpus.codings(c) for c in CODERS)):
            if ca or cb:
                mark = "  " if ca == cb else "≠ "
                print(f"{mark}{s.document}/{s.segment} A={';'.join(sorted(ca))} B={';'.join(sorted(cb))}  {s.text[:40]}")
    counts = corpus.code_counts(CODERS[0])
    print(f"wrote {args.out}: {len(corpus)} segments in {len(corpus.documents)} interviews, "
          f"{sum(1 for c in corpus.codings(CODERS[0]) if c)} coded by {CODERS[0]}, "
          f"{len(B_DIFFERS)} where {CODERS[1]} differs; fewest uses of a code: {min(counts.values())}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
