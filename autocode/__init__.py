"""autocode: learn from hand-coded Chinese interview segments, pre-code new transcripts, measure agreement.

>>> import autocode as ac
>>> ac.Codebook([ac.Code("embed", "组织嵌入")])
Codebook(1 codes, 1 top-level)
"""

from ._version import __version__

from . import agreement
from .backends import available_backends, get_backend, register
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
)
from .io import read_coded, read_documents, read_segments, read_transcripts, write_coded, write_suggestions
from .io.inputs import read_inputs
from .io.qdpx import read_project, read_qdc, write_qdpx
from .model import CodingModel
from .reliability import AgreementReport, measure_agreement
from .segment import segment_text
from .suggestion import Suggestions

__all__ = [
    "__version__",
    "agreement",
    "available_backends",
    "get_backend",
    "register",
    "Code",
    "Codebook",
    "CodedCorpus",
    "Segment",
    "CrossValidation",
    "compare_coders",
    "cross_validate",
    "AutocodeError",
    "AutocodeWarning",
    "CodebookError",
    "FormatError",
    "MissingDependencyError",
    "ModelFileError",
    "NotFittedError",
    "read_coded",
    "read_documents",
    "read_segments",
    "read_transcripts",
    "write_coded",
    "write_suggestions",
    "read_inputs",
    "read_project",
    "read_qdc",
    "write_qdpx",
    "AgreementReport",
    "measure_agreement",
    "CodingModel",
    "segment_text",
    "Suggestions",
]
