"""Hand-written mutants for the code where a permissive bug is a security bug.

mutmut edits what is there (``<`` to ``<=``, a constant to another); it never adds a
branch, so an allow-list that grows, a bound that is no longer checked or a path
check that always passes survive a high mutmut score. Each :class:`Patch` here is
one such edit, written as a source replacement: this script copies ``src/``,
``tests/``, ``docs/`` and ``pyproject.toml`` into a scratch folder, applies the patch there,
runs the patch's tests against the patched copy (``-x``, one process) and records
whether a test failed (*killed*) and which one.

Two sets:

- ``operators``: widen an allow-list, drop a size or bound check, skip a path or
  type check, in the safe unpickler, the tar header walk, the archive extraction,
  the resource budget, the run-directory lock and the exit-code mapping.
- ``spotcheck``: the eight realistic bugs of issue 25, each with the tests meant
  for it.

Run it (each patch takes one pytest run of its test files, one process)::

    python benchmarks/mutation_operators.py                 # both sets
    python benchmarks/mutation_operators.py spotcheck
    python benchmarks/mutation_operators.py operators --only pickle_numpy_prefix
    python benchmarks/mutation_operators.py --list

It writes ``benchmarks/results/mutation/operators.json`` and ``operators.md``;
running a subset updates only its entries. Nothing else in the repository changes.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
RESULTS = REPO_ROOT / "benchmarks" / "results" / "mutation"
PICKLE = "src/kerasimgcls/data/_safe_pickle.py"
TAR = "src/kerasimgcls/data/_tar_headers.py"
STANDARD = "src/kerasimgcls/data/_standard.py"
VALIDATION = "src/kerasimgcls/_validation.py"
RUN_DIR = "src/kerasimgcls/training/_run_dir.py"
CLI = "src/kerasimgcls/cli/__init__.py"
LOADERS = ("tests/test_safe_loaders.py",)
PICKLE_TESTS = (
    *LOADERS,
    "tests/test_hostile_budget.py",
    "tests/test_data_safe_pickle.py",
    "tests/test_hostile_data.py",
)
ARCHIVE_TESTS = (
    *LOADERS,
    "tests/test_hostile_budget.py",
    "tests/test_hostile_data.py",
    "tests/test_data_standard.py",
)


@dataclass(frozen=True)
class Patch:
    """One mutant: replace ``old`` (found exactly once) by ``new`` in ``path``."""

    path: str
    old: str
    new: str
    tests: tuple[str, ...]
    what: str


OPERATORS: dict[str, Patch] = {
    # --- the safe unpickler: widen the allow-list ------------------------------
    "pickle_numpy_prefix": Patch(
        PICKLE,
        "        if stand_in is not None:\n            return stand_in\n",
        "        if stand_in is not None:\n            return stand_in\n"
        '        if module.startswith("numpy"):\n'
        "            return super().find_class(module, name)\n",
        PICKLE_TESTS,
        "find_class hands any numpy.* global to the real unpickler",
    ),
    "pickle_any_prefix": Patch(
        PICKLE,
        "        if stand_in is not None:\n            return stand_in\n",
        "        if stand_in is not None:\n            return stand_in\n"
        '        if name.startswith("_"):\n'
        "            return super().find_class(module, name)\n",
        PICKLE_TESTS,
        "find_class accepts any private name of any module",
    ),
    "pickle_allow_numpy_testing": Patch(
        PICKLE,
        '    ("numpy", "ndarray"): _NdarrayStandIn,\n',
        '    ("numpy", "ndarray"): _NdarrayStandIn,\n'
        '    ("numpy.testing._private.utils", "runstring"): __import__(\n'
        '        "numpy.testing._private.utils", fromlist=["runstring"]\n'
        "    ).runstring,\n",
        PICKLE_TESTS,
        "numpy.testing._private.utils.runstring added to the allowed set",
    ),
    "pickle_allow_os_system": Patch(
        PICKLE,
        '    ("numpy", "ndarray"): _NdarrayStandIn,\n',
        '    ("numpy", "ndarray"): _NdarrayStandIn,\n'
        '    ("os", "system"): __import__("os").system,\n',
        PICKLE_TESTS,
        "os.system added to the allowed set",
    ),
    "pickle_allow_builtins_eval": Patch(
        PICKLE,
        '    ("numpy", "ndarray"): _NdarrayStandIn,\n',
        '    ("numpy", "ndarray"): _NdarrayStandIn,\n    ("builtins", "eval"): eval,\n',
        PICKLE_TESTS,
        "builtins.eval added to the allowed set",
    ),
    "pickle_allow_copyreg": Patch(
        PICKLE,
        '    ("numpy", "ndarray"): _NdarrayStandIn,\n',
        '    ("numpy", "ndarray"): _NdarrayStandIn,\n'
        '    ("copyreg", "_reconstructor"): __import__("copyreg")._reconstructor,\n',
        PICKLE_TESTS,
        "copyreg._reconstructor added to the allowed set",
    ),
    "pickle_real_codecs": Patch(
        PICKLE,
        "            return self._budget.encode_latin1\n",
        '            return __import__("codecs").encode\n',
        PICKLE_TESTS,
        "_codecs.encode is the real one (any codec, no byte budget)",
    ),
    "pickle_persistent_ids": Patch(
        PICKLE,
        "    def persistent_load(self, pid: Any) -> Any:\n        raise",
        "    def persistent_load(self, pid: Any) -> Any:\n"
        "        return pid\n        raise",
        PICKLE_TESTS,
        "persistent ids are accepted",
    ),
    "pickle_any_dtype_kind": Patch(
        PICKLE,
        "if dtype.kind not in _PLAIN_KINDS or dtype.fields or dtype.subdtype:",
        "if False:",
        PICKLE_TESTS,
        "any dtype kind (object, void, structured) is accepted",
    ),
    "pickle_no_opcode_bound": Patch(
        PICKLE,
        "if count > max_opcodes:",
        "if False:",
        PICKLE_TESTS,
        "the opcode bound is not checked",
    ),
    "pickle_no_memo_bound": Patch(
        PICKLE,
        "if largest >= max(count, 1):",
        "if False:",
        PICKLE_TESTS,
        "memo indexes beyond the opcodes are accepted",
    ),
    "pickle_no_object_bound": Patch(
        PICKLE,
        "        self.left -= 1\n        if self.left < 0:",
        "        self.left -= 1\n        if False:",
        PICKLE_TESTS,
        "the distinct-object bound is not checked",
    ),
    "pickle_no_byte_budget": Patch(
        PICKLE,
        "        self.left -= size\n        if self.left < 0:",
        "        self.left -= size\n        if False:",
        PICKLE_TESTS,
        "the byte budget (twice the file) is not checked",
    ),
    "pickle_no_depth_bound": Patch(
        PICKLE,
        "if depth > _MAX_DEPTH:",
        "if False:",
        PICKLE_TESTS,
        "nesting depth is not bounded",
    ),
    "pickle_no_size_check": Patch(
        PICKLE,
        "if len(self.data) != expected:",
        "if False:",
        PICKLE_TESTS,
        "an array's bytes are not checked against its shape",
    ),
    "pickle_no_dimension_bound": Patch(
        PICKLE,
        "            or len(shape) > _MAX_DIMENSIONS\n",
        "",
        PICKLE_TESTS,
        "an array may have any number of dimensions",
    ),
    # --- the tar header walk: drop a bound ------------------------------------
    "tar_no_header_bound": Patch(
        TAR,
        "if kind in _EXTENDED and size > max_header:",
        "if False:",
        ARCHIVE_TESTS,
        "extended headers of any size are read",
    ),
    "tar_no_total_bound": Patch(
        TAR,
        "        total += _BLOCK + padded\n        if total > max_total:",
        "        total += _BLOCK + padded\n        if False:",
        ARCHIVE_TESTS,
        "the walk does not bound the archive's bytes",
    ),
    "tar_no_member_bound": Patch(
        TAR,
        "    if members > max_members:\n",
        "    if False:\n",
        ARCHIVE_TESTS,
        "the walk does not bound the number of members",
    ),
    "tar_no_checksum": Patch(
        TAR,
        "        if not _checksum_ok(header):\n",
        "        if False:\n",
        ARCHIVE_TESTS,
        "damaged headers are walked past",
    ),
    "tar_no_zip_check": Patch(
        TAR,
        "if magic.startswith(_ZIP_MAGIC):",
        "if False:",
        ARCHIVE_TESTS,
        "a zip archive is not recognised",
    ),
    "tar_ignore_pax_size": Patch(
        TAR,
        "                pending = _pax_size(body[:size])\n",
        "                pending = None\n",
        ARCHIVE_TESTS,
        "a PAX size record is not applied to the next member",
    ),
    # --- the archive extraction: drop a bound, skip a path check --------------
    "extract_no_member_count": Patch(
        STANDARD,
        "                if count > max_members:\n",
        "                if False:\n",
        ARCHIVE_TESTS,
        "extraction does not bound the number of members",
    ),
    "extract_no_member_size": Patch(
        STANDARD,
        "if member.size > max_member:",
        "if False:",
        ARCHIVE_TESTS,
        "a member of any size is extracted",
    ),
    "extract_no_total": Patch(
        STANDARD,
        "                total += member.size\n                if total > max_total:",
        "                total += member.size\n                if False:",
        ARCHIVE_TESTS,
        "extraction does not bound the unpacked bytes",
    ),
    "extract_no_traversal_check": Patch(
        STANDARD,
        'if member.name.startswith(("/", "\\\\")) or ".." in parts:',
        "if False:",
        ARCHIVE_TESTS,
        "the traversal check passes every name",
    ),
    "extract_trusting_filter": Patch(
        STANDARD,
        'filter="data"',
        'filter="fully_trusted"',
        ARCHIVE_TESTS,
        "tarfile's data filter is not used",
    ),
    "extract_any_member_type": Patch(
        STANDARD,
        "if inside and (member.isfile() or member.isdir()):",
        "if inside:",
        ARCHIVE_TESTS,
        "links, devices and FIFOs are extracted too",
    ),
    "extract_outside_folder": Patch(
        STANDARD,
        "if inside and (member.isfile() or member.isdir()):",
        "if member.isfile() or member.isdir():",
        ARCHIVE_TESTS,
        "members outside the dataset's folder are extracted",
    ),
    "extract_no_depth_bound": Patch(
        STANDARD,
        "    if len(parts) > depth:\n",
        "    if False:\n",
        ARCHIVE_TESTS,
        "member names of any depth are extracted",
    ),
    "extract_no_name_bound": Patch(
        STANDARD,
        "        if size > _NAME_MAX:\n",
        "        if False:\n",
        ARCHIVE_TESTS,
        "name parts of any length are accepted",
    ),
    "extract_replaces_symlinked_target": Patch(
        STANDARD,
        "        or target.is_symlink()\n",
        "",
        ARCHIVE_TESTS,
        "a stale extraction that is a symlink is replaced",
    ),
    "extract_replaces_foreign_files": Patch(
        STANDARD,
        "        or not entries\n        <= {",
        "        or not entries\n        >= {",
        ARCHIVE_TESTS,
        "a stale extraction holding other files is replaced",
    ),
    # --- the resource budget ---------------------------------------------------
    "budget_accepts_zero": Patch(
        VALIDATION,
        "    if value < 1:\n",
        "    if value < 0:\n",
        ("tests/test_hostile_budget.py", *LOADERS),
        "a bound of 0 from the environment is accepted",
    ),
    "budget_ignores_environment": Patch(
        VALIDATION,
        "    if text is None or not text.strip():\n",
        "    if True:\n",
        ("tests/test_hostile_budget.py", *LOADERS),
        "the environment's overrides are ignored",
    ),
    # --- the run-directory lock ------------------------------------------------
    "lock_not_held_is_fine": Patch(
        RUN_DIR,
        "            if not held:\n",
        "            if False:\n",
        ("tests/test_run_dir.py",),
        "a lock held by another process is ignored",
    ),
    # --- the exit-code mapping -------------------------------------------------
    "exit_any_error_is_usage": Patch(
        CLI,
        "    if isinstance(err, _USER_ERRORS) and _raised_by_library(err):\n",
        "    if isinstance(err, _USER_ERRORS):\n",
        ("tests/test_cli_instant.py", "tests/test_hostile_messages.py"),
        "a ValueError raised inside Keras counts as the user's fault",
    ),
    "exit_internal_is_usage": Patch(
        CLI,
        "    return _EXIT_INTERNAL\n",
        "    return _EXIT_USAGE\n",
        ("tests/test_cli_instant.py", "tests/test_hostile_messages.py"),
        "an internal error exits 2",
    ),
}

SPOTCHECK: dict[str, Patch] = {
    "numpy_globals_reach_the_real_unpickler": OPERATORS["pickle_numpy_prefix"],
    "class_weight_not_compared_on_resume": Patch(
        "src/kerasimgcls/training/_checkpoint.py",
        'RESUME_SAFE_FIELDS: tuple[str, ...] = ("steps_per_execution", "tta")',
        'RESUME_SAFE_FIELDS: tuple[str, ...] = ("steps_per_execution", "tta", '
        '"class_weight")',
        (
            "tests/test_resume_fields.py",
            "tests/test_training.py::test_checkpoint_of_another_configuration_is_refused",
            "tests/test_training_callbacks.py::"
            "test_resume_with_a_changed_model_argument_is_refused",
        ),
        "class_weight added to the settings resume does not compare",
    ),
    "scaling_skips_nested_models": Patch(
        "src/kerasimgcls/_scaling.py",
        "            yield from _walk(layer, done)\n            if done:\n"
        "                return\n            continue\n",
        "            pass\n",
        ("tests/test_input_contract.py",),
        "input scaling stops descending into nested models",
    ),
    "checkpoint_first_in_callbacks": Patch(
        "src/kerasimgcls/training/_loop.py",
        "RunCallbacks([*callbacks, checkpoint],",
        "RunCallbacks([checkpoint, *callbacks],",
        (
            "tests/test_training_wiring.py::test_weight_averaging_resumes_bit_identically",
        ),
        "the run checkpoint first in the callback order",
    ),
    "atomic_write_replaces_after_failure": Patch(
        "src/kerasimgcls/_io.py",
        '        yield tmp\n        with open(tmp, "rb+") as handle:\n',
        "        try:\n            yield tmp\n        except BaseException:\n"
        "            os.replace(tmp, final)\n            raise\n"
        '        with open(tmp, "rb+") as handle:\n',
        ("tests/test_io.py",),
        "the atomic write replaces the file even when the writer failed",
    ),
    "precise_bn_unweighted_batches": Patch(
        "src/kerasimgcls/training/_precise_bn.py",
        "weights = np.asarray(counts, dtype=np.float64)[:, np.newaxis] / sum(counts)",
        "weights = np.ones((len(counts), 1)) / len(counts)",
        (
            "tests/test_input_contract.py::"
            "test_precise_batch_norm_equals_a_direct_computation",
        ),
        "precise batch norm averages chunks without weighting them by size",
    ),
    "tta_unweighted_mean": Patch(
        "src/kerasimgcls/_tta.py",
        "mean = np.tensordot(weights, logits, axes=1)",
        "mean = logits.mean(axis=0)",
        ("tests/test_tta.py",),
        "TTA takes an unweighted mean of the views",
    ),
    "diverged_run_exits_2": Patch(
        CLI,
        "    if _is_failed_run(err):\n        return _EXIT_FAILED\n",
        "    if _is_failed_run(err):\n        return _EXIT_USAGE\n",
        ("tests/test_cli.py::test_a_diverged_run_exits_with_1",),
        "a diverged run exits 2 instead of 1",
    ),
}

SETS = {"operators": OPERATORS, "spotcheck": SPOTCHECK}
_FAILED = re.compile(r"^(?:FAILED|ERROR) (.+?)(?: - .*)?$", re.MULTILINE)


def run_patch(patch: Patch, *, timeout: int = 900) -> dict[str, object]:
    """Apply ``patch`` in a scratch copy and run its tests; say who killed it."""
    with tempfile.TemporaryDirectory(prefix="mutation-patch-") as scratch:
        folder = Path(scratch)
        ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
        shutil.copytree(REPO_ROOT / "src", folder / "src", ignore=ignore)
        shutil.copytree(REPO_ROOT / "tests", folder / "tests", ignore=ignore)
        # Some tests read the docs (the security page lists every bound).
        shutil.copytree(REPO_ROOT / "docs", folder / "docs", ignore=ignore)
        shutil.copy(REPO_ROOT / "pyproject.toml", folder / "pyproject.toml")
        source = folder / patch.path
        text = source.read_text(encoding="utf-8")
        if text.count(patch.old) != 1:
            raise SystemExit(
                f"{patch.path}: the text to replace occurs {text.count(patch.old)} "
                f"times, not once: {patch.old!r}"
            )
        source.write_text(text.replace(patch.old, patch.new), encoding="utf-8")
        env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
        env |= {"PYTHONPATH": str(folder / "src"), "TF_CPP_MIN_LOG_LEVEL": "3"}
        argv = [sys.executable, "-m", "pytest", "-x", "-q", "-n", "0"]
        # Test files not written yet are left out (to measure the tests of today).
        tests = [t for t in patch.tests if (folder / t.split("::")[0]).is_file()]
        argv += ["-p", "no:cacheprovider", "--timeout=300", *tests]
        try:
            run = subprocess.run(
                argv,
                cwd=folder,
                env=env,
                capture_output=True,
                text=True,
                timeout=timeout,
            )
        except subprocess.TimeoutExpired:
            return {"status": "timeout", "killed_by": None}
    if run.returncode == 0:
        return {"status": "survived", "killed_by": None}
    if run.returncode != 1:
        tail = (run.stdout + run.stderr)[-2000:]
        raise SystemExit(f"pytest exited {run.returncode}:\n{tail}")
    found = _FAILED.findall(run.stdout)
    return {"status": "killed", "killed_by": found[0] if found else "?"}


def write_reports(results: dict[str, dict[str, dict[str, object]]]) -> None:
    """Write operators.json and operators.md."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "operators.json").write_text(json.dumps(results, indent=2) + "\n")
    lines = [
        "# Hand-written mutants (benchmarks/mutation_operators.py)",
        "",
        "See docs/contributing/testing.md.",
    ]
    for set_name, entries in results.items():
        killed = sum(entry["status"] == "killed" for entry in entries.values())
        lines += [
            "",
            f"## {set_name}: {killed} of {len(entries)} killed",
            "",
            "| mutant | file | what | status | first failing test |",
            "| --- | --- | --- | --- | --- |",
        ]
        for key, entry in entries.items():
            lines.append(
                f"| `{key}` | `{entry['path']}` | {entry['what']} | {entry['status']} "
                f"| `{entry['killed_by'] or '-'}` |"
            )
    (RESULTS / "operators.md").write_text("\n".join(lines) + "\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sets", nargs="*", help=f"default: all of {list(SETS)}")
    parser.add_argument("--only", nargs="*", default=None, help="some patches")
    parser.add_argument("--list", action="store_true", help="list the patches")
    args = parser.parse_args(argv)
    chosen = args.sets or list(SETS)
    unknown = sorted(set(chosen) - set(SETS))
    if unknown:
        parser.error(f"unknown sets {unknown}; available: {list(SETS)}")
    if args.list:
        for set_name in chosen:
            for key, patch in SETS[set_name].items():
                print(f"{set_name:10} {key:40} {patch.path}: {patch.what}")
        return 0
    path = RESULTS / "operators.json"
    for set_name in chosen:
        for key, patch in SETS[set_name].items():
            if args.only is not None and key not in args.only:
                continue
            entry: dict[str, object] = {"path": patch.path, "what": patch.what}
            entry |= run_patch(patch)
            entry["tests"] = list(patch.tests)
            entry["date"] = datetime.date.today().isoformat()
            results = json.loads(path.read_text()) if path.is_file() else {}
            results.setdefault(set_name, {})[key] = entry
            results[set_name] = {
                k: results[set_name][k]
                for k in SETS[set_name]
                if k in results[set_name]
            }
            write_reports(results)
            print(f"{set_name}/{key}: {entry['status']} {entry['killed_by'] or ''}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
