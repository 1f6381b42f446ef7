"""autocode: learn from hand-coded Chinese interview segments, pre-code new transcripts, measure agreement.

The pipeline, and where each step lives:

- text in: :func:`read_transcripts`, :func:`read_coded`, :func:`read_project` (``autocode.io``);
- segments: :func:`segment_text` (speaker turns, sentences), :class:`Segment`, :class:`CodedCorpus`;
- the model: :class:`CodingModel` over a :class:`Codebook` and a backend (``autocode.backends``), calibrated
  out of fold (``autocode.calibration``, ``autocode.folds``);
- suggestions: :class:`Suggestions` (with their evidence, :meth:`CodingModel.explain`), written by
  :func:`write_suggestions` and :func:`write_qdpx`;
- the review loop: a reviewed pre-coding read back by :func:`read_review` (a :class:`Review`) trains the model
  again (``CodingModel.fit(coded, review=...)``); :func:`next_to_code` says what to code next;
- beside it: agreement between coders (:mod:`autocode.agreement` statistics, :func:`measure_agreement`,
  :func:`cross_validate`) and theoretical saturation (:mod:`autocode.saturation`).

>>> import autocode as ac
>>> ac.Codebook([ac.Code("embed", "组织嵌入")])
Codebook(1 codes, 1 top-level)
"""

from . import agreement
from ._version import __version__
from .backends import Backend, available_backends, get_backend, register
from .codebook import Code, Codebook
from .corpus import CodedCorpus, Segment
from .evaluate import CrossValidation, compare_coders, cross_validate
from .exceptions import (
    AutocodeError,
    AutocodeWarning,
    CodebookError,
    FormatError,
    MissingDependencyError,
    ModelFileError,
    NotFittedError,
    OutputError,
)
from .folds import grouped_folds
from .io import read_coded, read_documents, read_segments, read_transcripts, write_coded, write_suggestions
from .io.inputs import read_inputs
from .io.qdpx import read_project, read_qdc, write_qdpx
from .io.review import read_review
from .model import CodingModel
from .reliability import AgreementReport, measure_agreement
from .review import Review
from .rules import Rule, RuleSet, read_rules
from .segment import segment_text
from .select import next_to_code
from .suggestion import Suggestions

__all__ = [
    "__version__",
    # text in
    "read_transcripts",
    "read_documents",
    "read_segments",
    "read_coded",
    "read_inputs",
    "read_project",
    "read_qdc",
    # segments and codebook
    "segment_text",
    "Segment",
    "CodedCorpus",
    "Code",
    "Codebook",
    # the model
    "CodingModel",
    "Backend",
    "available_backends",
    "get_backend",
    "register",
    "grouped_folds",
    "Rule",
    "RuleSet",
    "read_rules",
    # suggestions and files out
    "Suggestions",
    "write_suggestions",
    "write_coded",
    "write_qdpx",
    # the review loop
    "read_review",
    "Review",
    "next_to_code",
    # agreement
    "agreement",
    "measure_agreement",
    "AgreementReport",
    "cross_validate",
    "CrossValidation",
    "compare_coders",
    # errors
    "AutocodeError",
    "AutocodeWarning",
    "CodebookError",
    "FormatError",
    "MissingDependencyError",
    "ModelFileError",
    "NotFittedError",
    "OutputError",
]
