"""Chinese text handling: Traditional/Simplified normalisation and jieba word tokens.

Normalisation only feeds the features: the original text and its offsets are never changed.
OpenCC's ``t2s`` conversion maps characters one to one for almost all text, so normalised text has the same
length as the original; callers that need offsets still use the original.

Word segmentation uses jieba's dictionary and algorithm, through one of two engines: ``"rjieba"`` (jieba-rs, a
Rust port, about ten times faster, the default when installed) or ``"jieba"`` (the Python original). They agree on
more than 99% of sentences; a model records the engine it was trained with and uses the same one.
jieba's ``Tokenizer`` holds a lock and cannot be pickled, so :class:`ChineseTokenizer` stores only its settings
and builds the tokenizer lazily, once per process.

>>> tok = ChineseTokenizer()
>>> tok.normalize("補充式標籤")
'补充式标签'
>>> tok.words("我們社區有黨支部")
['我们', '社区', '有', '党支部']
"""

from __future__ import annotations

import re
import threading
import unicodedata
from functools import lru_cache

__all__ = ["ChineseTokenizer", "count_letters", "default_engine", "normalize", "SPEAKER_PREFIX"]

_lock = threading.Lock()
_jieba = None
_opencc = {}

_SPACE = re.compile(r"\s+")
# A speaker label at the start of a canonical segment text, e.g. "A: " or "受訪者：" (stripped for features).
SPEAKER_PREFIX = re.compile(r"^\s*[A-Za-z\u4e00-\u9fff]{1,6}\s*[:：]\s*")


def _get_jieba():
    global _jieba
    if _jieba is None:
        with _lock:
            if _jieba is None:
                import logging

                import jieba

                jieba.setLogLevel(logging.WARNING)
                tk = jieba.Tokenizer()
                tk.initialize()
                _jieba = tk
    return _jieba


def jieba_tokenizer():
    """The one initialised ``jieba.Tokenizer`` of the process (its dictionary is loaded once; shared by the
    word segmentation and by tools built on jieba, such as its part-of-speech tagger)."""
    return _get_jieba()


def default_engine() -> str:
    """``"rjieba"`` when it is installed, else ``"jieba"``."""
    try:
        import rjieba  # noqa: F401
    except ImportError:
        return "jieba"
    return "rjieba"


def _get_cutter(engine: str, hmm: bool):
    if engine == "rjieba":
        try:
            import rjieba
        except ImportError:
            import warnings

            from .exceptions import AutocodeWarning

            warnings.warn("This model was trained with the 'rjieba' word segmenter, which is not installed; using "
                          "jieba, which segments a few sentences differently. pip install rjieba for identical "
                          "results.", AutocodeWarning, stacklevel=4)
            engine = "jieba"
        else:
            return lambda text: rjieba.cut(text, hmm)
    if engine != "jieba":
        raise ValueError(f"engine must be 'rjieba' or 'jieba', got {engine!r}")
    tk = _get_jieba()
    return lambda text: tk.lcut(text, HMM=hmm)


def _get_opencc(config: str):
    conv = _opencc.get(config)
    if conv is None:
        import opencc

        conv = opencc.OpenCC(config if config.endswith(".json") else config)
        _opencc[config] = conv
    return conv


def count_letters(text: str) -> int:
    """Letters and digits in ``text`` (Unicode categories L and N: Chinese characters count one each).

    >>> count_letters("嗯，对。OK 2")
    5
    """
    return sum(1 for ch in text if unicodedata.category(ch)[0] in "LN")


def normalize(text: str, script: str = "simplified") -> str:
    """Normalise text for features: NFKC (full-width Latin and digits to half-width), lower case, and
    Traditional -> Simplified characters when ``script == "simplified"``.

    >>> normalize("ＡＢＣ１２３ 後來")
    'abc123 后来'
    """
    text = unicodedata.normalize("NFKC", text).lower()
    if script == "simplified":
        text = _get_opencc("t2s").convert(text)
    elif script != "none":
        raise ValueError(f"script must be 'simplified' or 'none', got {script!r}")
    return text


class ChineseTokenizer:
    """Picklable word tokenizer for Chinese (jieba, precise mode) with normalisation.

    Parameters
    ----------
    script : {"simplified", "none"}
        Convert Traditional characters to Simplified before tokenising (default), or leave them.
    hmm : bool
        Let jieba guess unknown words with its HMM.
    strip_speaker : bool
        Drop a leading speaker label such as ``"B: "`` before tokenising.
    engine : {"auto", "rjieba", "jieba"}
        Word segmenter; ``"auto"`` picks rjieba when installed (see :func:`default_engine`).
    """

    def __init__(self, script: str = "simplified", hmm: bool = True, strip_speaker: bool = True,
                 engine: str = "auto"):
        self.script = script
        self.hmm = hmm
        self.strip_speaker = strip_speaker
        self.engine = default_engine() if engine == "auto" else engine
        self._cut = None

    def get_params(self) -> dict:
        return {"script": self.script, "hmm": self.hmm, "strip_speaker": self.strip_speaker,
                "engine": self.engine}

    def normalize(self, text: str) -> str:
        if self.strip_speaker:
            text = SPEAKER_PREFIX.sub("", text, count=1)
        return normalize(text, self.script)

    def words(self, text: str, normalized: bool = False) -> list[str]:
        """Word tokens of ``text`` (whitespace and punctuation-only tokens dropped)."""
        if not normalized:
            text = self.normalize(text)
        if self._cut is None:
            self._cut = _get_cutter(self.engine, self.hmm)
        return [w for w in self._cut(text) if _is_word(w)]

    def __getstate__(self):
        return self.get_params()

    def __setstate__(self, state):
        self.__init__(**state)

    def __repr__(self) -> str:
        return f"ChineseTokenizer(script={self.script!r}, hmm={self.hmm}, engine={self.engine!r})"


@lru_cache(maxsize=65536)
def _is_word(token: str) -> bool:
    return any(unicodedata.category(ch)[0] in "LN" for ch in token)
