"""The house: a public surface, no import cycles, small modules, scikit-learn's estimator contract."""

from __future__ import annotations

import ast
import importlib
import pkgutil
from pathlib import Path

import numpy as np
import pytest
from sklearn.base import clone

import autocode as ac

PACKAGE = Path(ac.__file__).parent
MAX_LINES = 500


def _modules() -> dict[str, Path]:
    out = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def _top_level_imports(name: str, path: Path, known: set[str]) -> set[str]:
    """The autocode modules ``name`` imports when it is imported (imports inside functions are lazy and left
    out; ``from . import x`` counts x when x is a module)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("autocode"))
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if not target.startswith("autocode"):
                continue
            found.add(target)
            found.update(f"{target}.{a.name}" for a in node.names if f"{target}.{a.name}" in known)
    return {m for m in found if m in known and m != name}


def test_no_import_cycle():
    modules = _modules()
    graph = {name: _top_level_imports(name, path, set(modules)) for name, path in modules.items()}
    # a module's package __init__ runs before it: an edge to every enclosing package
    for name in modules:
        parts = name.split(".")
        for i in range(1, len(parts)):
            parent = ".".join(parts[:i])
            if parent in graph and parent != name:
                graph[name].add(parent)
    state: dict[str, int] = {}
    path: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                # an edge to an enclosing package that is still importing is how Python imports submodules
                if not node.startswith(nxt + "."):
                    cycle = path[path.index(nxt):] + [nxt]
                    pytest.fail("import cycle: " + " -> ".join(cycle))
            elif nxt not in state:
                visit(nxt)
        path.pop()
        state[node] = 2

    for name in sorted(graph):
        if name not in state:
            visit(name)


def test_modules_are_small_or_say_why():
    for name, path in _modules().items():
        text = path.read_text(encoding="utf-8")
        n = text.count("\n")
        if n > MAX_LINES:
            head = text[:3000].lower()
            assert "long because" in head, f"{name} has {n} lines and does not say at its top why it is long"


def test_public_surface():
    assert len(ac.__all__) == len(set(ac.__all__))
    for name in ac.__all__:
        assert hasattr(ac, name), name
        assert not name.startswith("_") or name == "__version__"
    for info in pkgutil.walk_packages(ac.__path__, "autocode."):
        if "transformer" in info.name and not info.name.endswith("transformer"):
            continue  # imports torch
        if info.name.endswith("__main__"):
            continue  # runs the command
        mod = importlib.import_module(info.name)
        for name in getattr(mod, "__all__", []):
            assert hasattr(mod, name), f"{info.name}.__all__ names {name}, which it does not define"


def _estimators(book):
    from autocode.backends.embedding import TfidfE5Backend
    from autocode.backends.tfidf import TfidfBackend
    from autocode.backends.transformer import TransformerBackend
    from autocode.saturation import NoveltyScorer

    return [
        ac.CodingModel(book),
        ac.CodingModel(book, backend=TfidfBackend(C=2.0), n_splits=3, progress=True),
        TfidfBackend(word_ngrams=(1, 3), engine="jieba"),
        TfidfE5Backend(fusion="late", context_weight=0.5),
        TransformerBackend(model_name="some/folder", epochs=2),
        NoveltyScorer(n_neighbors=3),
    ]


def test_every_estimator_can_be_cloned(book):
    for est in _estimators(book):
        twin = clone(est)
        assert type(twin) is type(est) and twin is not est
        params, again = est.get_params(deep=False), twin.get_params(deep=False)
        assert params.keys() == again.keys()
        for k, v in params.items():
            if isinstance(v, ac.Codebook):
                assert again[k].ids == v.ids
            elif hasattr(v, "get_params"):
                assert again[k].get_params() == v.get_params()
            else:
                assert again[k] == v, (type(est).__name__, k)


def test_set_params_and_deep_params(book):
    from autocode.backends.tfidf import TfidfBackend

    model = ac.CodingModel(book, backend=TfidfBackend())
    assert model.get_params(deep=True)["backend__C"] == 4.0
    assert model.set_params(backend__C=1.0, n_splits=2) is model
    assert model.backend.C == 1.0 and model.n_splits == 2
    with pytest.raises(ValueError, match="Invalid parameter"):
        model.set_params(no_such_setting=1)


def test_constructing_builds_nothing(book):
    from autocode.backends.tfidf import TfidfBackend

    backend = TfidfBackend(engine="auto")
    assert backend.engine == "auto" and "_tokenizer_cache" not in vars(backend)
    model = ac.CodingModel(book, backend_params={"C": 1.0})
    assert set(vars(model)) == set(model.get_params(deep=False))


def test_fit_does_not_change_the_settings(book, coded):
    from autocode.backends.tfidf import TfidfBackend

    backend = TfidfBackend()
    model = ac.CodingModel(book, backend=backend, n_splits=3)
    before = {k: v for k, v in model.get_params(deep=True).items() if k != "backend"}
    model.fit(coded)
    assert {k: v for k, v in model.get_params(deep=True).items() if k != "backend"} == before
    assert not hasattr(backend, "coef_")  # the model fits a copy
    assert len(model.code_groups_) == len(model.codes_)


@pytest.fixture
def model(book, coded):
    return ac.CodingModel(book, n_splits=3).fit(coded)


def test_a_string_is_one_segment(model):
    one = model.suggest("社区党支部带领居民开会")
    assert len(one) == 1 and one.segments[0].text == "社区党支部带领居民开会"
    np.testing.assert_allclose(model.predict_proba("社区党支部带领居民开会"),
                               model.predict_proba(["社区党支部带领居民开会"]))


def test_global_threshold_is_saved(tmp_path, model):
    assert model.global_threshold_ is not None and 0 < model.global_threshold_ < 1
    loaded = ac.CodingModel.load(model.save(tmp_path / "m"))
    assert loaded.global_threshold_ == model.global_threshold_
    assert loaded.code_groups_ == model.code_groups_
