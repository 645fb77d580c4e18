"""Shared fixtures. Tests write their own data; nothing is downloaded."""

from __future__ import annotations

import atexit
import importlib.util
import os
import shutil
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
# Hermetic: no test reads or fills the user's Keras or kerasimgcls caches.
_SCRATCH = Path(tempfile.mkdtemp(prefix="kerasimgcls-tests-"))
atexit.register(shutil.rmtree, _SCRATCH, ignore_errors=True)
os.environ["KERAS_HOME"] = str(_SCRATCH / "keras_home")
os.environ["KERASIMGCLS_CACHE_DIR"] = str(_SCRATCH / "cache")


REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"


def _keras_state_is_dirty() -> bool:
    """Whether Keras holds global state: layer names given, a dtype policy set.

    Keras keeps both in two thread-locals that ``clear_session`` replaces by empty
    ones, so a test that built no layer and set no policy leaves them empty. Not
    imported yet: nothing to clear, and nothing is imported for the check.
    """
    if "keras" not in sys.modules:
        return False
    from keras.src.backend.common import global_state

    trackers = (global_state.GLOBAL_STATE_TRACKER, global_state.GLOBAL_SETTINGS_TRACKER)
    return any(vars(tracker) for tracker in trackers)


@pytest.fixture(autouse=True)
def _clear_keras_session() -> None:
    """Start every test with a fresh Keras state (layer names from ``dense`` again).

    Only when a test before it left state behind, and without ``clear_session``'s
    ``gc.collect()``: with TensorFlow loaded one collection takes about 0.3 s, which
    every test paid (about 6 minutes over the suite). :func:`_collect_per_module`
    collects once per module instead.
    """
    if _keras_state_is_dirty():
        import keras

        keras.backend.clear_session(free_memory=False)


@pytest.fixture(autouse=True, scope="module")
def _collect_per_module() -> Iterator[None]:
    """Free the memory of a module's models once, after its last test."""
    yield
    if "keras" in sys.modules:
        import gc

        gc.collect()


@pytest.fixture(autouse=True)
def _isolate_op_determinism() -> Iterator[None]:
    """Undo a test's ``enable_op_determinism`` so it cannot leak into later tests.

    ``Trainer(deterministic=True)`` turns TensorFlow's op determinism on for the
    whole process, and the public API has no switch to turn it off again; without
    this, every test after the first deterministic one would run deterministic and
    a ``deterministic=False`` test could not fail for want of it. TensorFlow keeps
    the switch (``disable_op_determinism``) in ``tensorflow.python.framework.config``.
    """
    from tensorflow.python.framework import config as tf_config

    yield
    # Off after every test, whoever turned it on: a module- or session-scoped
    # fixture that trained deterministically (set up before this fixture) included.
    # A test that needs it turns it on itself (Trainer.fit does).
    if tf_config.is_op_determinism_enabled():
        tf_config.disable_op_determinism()


@pytest.fixture(scope="session")
def digits():  # type: ignore[no-untyped-def]
    """The scikit-learn digits as an ImageDataset (real data, always offline)."""
    from kerasimgcls import load_digits

    return load_digits(seed=0)


@pytest.fixture(scope="session")
def shared_cifar10_jpg() -> Path:
    """The real CIFAR-10 JPEGs beside the project; the test is skipped without them."""
    path = SHARED_DATA / "cifar10-jpg"
    if not (path / "train").is_dir():
        pytest.skip("../shared/data/cifar10-jpg is not present")
    return path


@pytest.fixture(scope="session")
def load_benchmark() -> Callable[[str], ModuleType]:
    """Import a script of ``benchmarks/`` by name (they import each other as siblings)."""
    folder = REPO_ROOT / "benchmarks"

    def load(name: str) -> ModuleType:
        sys.path.insert(0, str(folder))
        try:
            spec = importlib.util.spec_from_file_location(name, folder / f"{name}.py")
            assert spec is not None and spec.loader is not None
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
            return module
        finally:
            sys.path.remove(str(folder))

    return load


@pytest.fixture(scope="session")
def digits_run(tmp_path_factory) -> Path:  # type: ignore[no-untyped-def]
    """A finished one-epoch digits run made by ``kerasimgcls train`` (shared, read-only)."""
    from kerasimgcls.cli import main

    run_dir = tmp_path_factory.mktemp("digits_run") / "run"
    argv = ["train", "--dataset", "digits", "--epochs", "1", "--no-deterministic"]
    assert main([*argv, "--quiet", "--no-evaluate", "--run-dir", str(run_dir)]) == 0
    return run_dir
