"""Agreement between coders over a coded corpus: per code, pooled and macro-averaged, with bootstrap intervals.

The one agreement engine of autocode: ``autocode agree``, :func:`~autocode.cross_validate` (the model against
the coders, out of fold) and :func:`~autocode.compare_coders` all compute their figures here.

Each code is a present/absent decision per unit. :func:`measure_agreement` computes, for every code and over all
codes together, the statistics of :mod:`autocode.agreement` between the coders of a
:class:`~autocode.corpus.CodedCorpus`, optionally rolled up to categories through the codebook, over segments or
characters, with confidence intervals from a bootstrap over documents.

Units
-----
``level="segment"``
    one unit per segment.
``level="character"``
    one unit per character, per code and document, as NVivo's coding comparison counts it: coders who cut
    segments differently can still be compared. Segments with character offsets (``start``/``end``) are placed
    at their offsets, and where segments overlap a character carries the codes of every segment the coder
    coded over it. In a document where some segment has no offsets (a canonical table without ``start``/``end``
    columns) the segments are laid end to end in table order, each as long as its text. Only text inside
    segments counts: text between segments is not known to the corpus.

``uncoded="drop"`` leaves out the units (segments, characters) that no compared coder applied any code to,
at the level compared: an uncoded interviewer question then does not count as agreement on every code.

Coders
------
Every statistic for two coders is given per pair of coders (Cohen's kappa, percent agreement); the statistics
for any number of coders (Krippendorff's alpha, Fleiss' kappa, Gwet's AC1, Brennan-Prediger, percent
agreement; and Krippendorff's alpha over each unit's whole set of codes with the MASI distance, pooled) over the
human coders and, when a model is among the coders, over the humans plus the model. A
model is a coder named in ``models``, by default every coder whose name starts with ``"autocode"`` (the name
``autocode precode`` writes), so human-human and model-human agreement stand side by side.

Missing codings
---------------
A coder who did not code a segment others coded (mismatched segment lists) is missing there, not "applied
nothing": those units are left out of that coder's pairs, Krippendorff's alpha and Gwet's AC1 use the coders
who coded each unit, and Fleiss' kappa uses the units every coder coded. The segments are named in
:attr:`AgreementReport.missing` and in an :class:`~autocode.exceptions.AutocodeWarning`.

Layout
------
``_engine``: :func:`measure_agreement`, step by step; ``_units``: the units of agreement (segments,
characters) and roll-up depth; ``_masi``: MASI alpha over code sets; ``_bootstrap``: resamples of documents and
percentile intervals; ``_report``: :class:`AgreementReport` and its Markdown, HTML and CSV; ``_plot``: the
per-code plot; ``_disagreements``: :class:`Disagreements`.

Example
-------
>>> from autocode import CodedCorpus, Segment
>>> segs = [Segment("P1", str(i), "文字" * i) for i in range(1, 7)]
>>> e = {("P1", "1"): {"a"}, ("P1", "2"): {"a"}, ("P1", "3"): set(), ("P1", "4"): {"b"},
...      ("P1", "5"): {"b"}, ("P1", "6"): set()}
>>> a = {**e, ("P1", "3"): {"a"}}
>>> report = measure_agreement(CodedCorpus(segs, {"E": e, "A": a}))
>>> round(report.value("cohen_kappa", code="a"), 3), report.value("cohen_kappa", code="b")
(0.667, 1.0)
>>> [(d["code"], d["segment"], d["applied_by"]) for d in report.disagreements]
[('a', '3', ['A'])]
"""

from ._disagreements import Disagreements
from ._engine import measure_agreement
from ._report import STATISTICS, AgreementReport

__all__ = ["AgreementReport", "Disagreements", "measure_agreement", "STATISTICS"]
