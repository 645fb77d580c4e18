"""The library's Keras objects, registered with Keras in one place.

A saved file names each custom object by its registered name
(``"kerasimgcls>InputPreprocessing"``), and Keras finds it only if the module that
defines it has been imported: Keras imports modules by name for its own packages
alone. The package imports lazily, so that ``import kerasimgcls`` and the command
line's ``--help`` do not start TensorFlow; registering therefore cannot wait for a
module to be used. This module makes it independent of what a process happened to
import before it loads a model:

- :func:`register_keras_objects` imports every module listed in
  :data:`SERIALIZABLE_MODULES` (``tests/test_keras_objects.py`` checks the list
  against every ``register_keras_serializable`` in the source);
- ``import kerasimgcls`` calls :func:`register_when_keras_loads`: it registers at
  once if Keras is already imported, and otherwise the moment Keras finishes
  importing (a post-import hook), so ``keras.saving.load_model`` works after
  ``import kerasimgcls`` in either order, without making the import itself slow.
  When a module of the library is what imports Keras (a process that imports
  ``kerasimgcls.models.blocks`` first), that module is half executed as Keras finishes;
  the hook then tries again as each module of the library finishes importing.
  :func:`kerasimgcls.load_model` calls :func:`register_keras_objects` as well,
  which raises what went wrong, if anything did.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import sys
import threading
import warnings
from collections.abc import Sequence
from types import ModuleType
from typing import Any

__all__ = [
    "SERIALIZABLE_MODULES",
    "register_keras_objects",
    "register_when_keras_loads",
]

#: Every module that defines an object registered with
#: ``keras.saving.register_keras_serializable`` (package ``"kerasimgcls"``), and so
#: may be named in a ``.keras`` file or a checkpoint.
SERIALIZABLE_MODULES: tuple[str, ...] = (
    "kerasimgcls.models.preprocessing",  # InputPreprocessing: pixels in, class names
    "kerasimgcls.models.layers",  # FusedBatchNormalization
    "kerasimgcls.models.airbench",  # airbench's initializer and scaled bias
    "kerasimgcls.training._schedules",  # WarmupSchedule (checkpoints only)
    "kerasimgcls.training._fine_tune",  # PhaseLearningRate (checkpoints only)
)

_lock = threading.RLock()
_registered = False
_registering = False


def register_keras_objects() -> None:
    """Register every Keras object of the library (imports Keras; idempotent).

    Example:
        >>> import keras
        >>> from kerasimgcls._keras_objects import register_keras_objects
        >>> register_keras_objects()
        >>> keras.saving.get_registered_object("kerasimgcls>InputPreprocessing")
        <class 'kerasimgcls.models.preprocessing.InputPreprocessing'>
    """
    global _registered, _registering
    with _lock:
        if _registered or _registering:
            return
        _registering = True
        try:
            for name in SERIALIZABLE_MODULES:
                importlib.import_module(name)
        finally:
            _registering = False
        _registered = True
        _remove_hook()


class _RegisterAfterImport(importlib.abc.MetaPathFinder):
    """Find modules as usual; register once Keras, or a module of ours, has run.

    Registering as Keras finishes importing fails when a module of the library is
    the one importing Keras (``import kerasimgcls.models.blocks`` first): it is half
    executed, and the modules that register import from it. Every module of the
    library is therefore watched too, and registration is tried again as each one
    finishes; the outermost finishes last, when nothing is half imported.
    """

    def find_spec(
        self,
        fullname: str,
        path: Sequence[str] | None,
        target: ModuleType | None = None,
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname != "keras" and not fullname.startswith("kerasimgcls."):
            return None
        spec = _find_with_other_finders(self, fullname, path, target)
        loader = None if spec is None else spec.loader
        if spec is None or loader is None or not hasattr(loader, "exec_module"):
            return spec
        run_module = loader.exec_module

        def exec_module(module: ModuleType) -> None:
            run_module(module)
            if "keras" in sys.modules:
                _register_quietly()

        # The loader is this spec's own instance: wrapping it changes nothing else.
        loader.exec_module = exec_module  # type: ignore[method-assign]
        return spec


def _find_with_other_finders(
    hook: importlib.abc.MetaPathFinder,
    fullname: str,
    path: Sequence[str] | None,
    target: ModuleType | None,
) -> importlib.machinery.ModuleSpec | None:
    for finder in list(sys.meta_path):
        find_spec = getattr(finder, "find_spec", None)
        if finder is hook or find_spec is None:
            continue
        spec: importlib.machinery.ModuleSpec | None = find_spec(fullname, path, target)
        if spec is not None:
            return spec
    return None


def _register_quietly() -> None:
    """Register after an import; a failure must not break the import itself."""
    try:
        register_keras_objects()
    except ImportError:
        pass  # a module of ours is half imported: tried again when it finishes
    except Exception as err:  # reported; load_model tries again and raises
        warnings.warn(
            f"kerasimgcls could not register its Keras objects ({err}); "
            "kerasimgcls.load_model will try again",
            RuntimeWarning,
            stacklevel=2,
        )


def _remove_hook() -> None:
    sys.meta_path[:] = [
        finder
        for finder in sys.meta_path
        if not isinstance(finder, _RegisterAfterImport)
    ]


def register_when_keras_loads() -> None:
    """Register now if Keras is imported, else as soon as it is (no import here).

    Called by ``import kerasimgcls``. It never imports Keras itself, so the import
    stays cheap for the command line.
    """
    keras: Any = sys.modules.get("keras")
    if keras is not None and getattr(keras, "saving", None) is not None:
        _register_quietly()
        if _registered:
            return
    if not any(isinstance(finder, _RegisterAfterImport) for finder in sys.meta_path):
        sys.meta_path.insert(0, _RegisterAfterImport())
