"""Mutation testing of the modules whose tests are fast, one module at a time (mutmut).

For each module this copies ``src/``, ``tests/`` and ``pyproject.toml`` into a scratch
folder, writes a mutmut configuration that mutates only that module and runs only its
fast test files, runs ``mutmut run`` there, and records every mutant's status. The
per-module summary goes to ``benchmarks/results/mutation/summary.json`` and
``summary.md`` (survivors with their diffs); running a subset of modules updates their
entries and keeps the others. Nothing is written inside the repository but those two
files.

A mutant is *killed* when a test fails (or times out) with it in place. The score is
killed / (all mutants of the module, or of the listed functions). Survivors are
either killed by a new test or justified in ``docs/contributing/testing.md``.

Run it (about 1-3 minutes per module on 2 cores; hold a CPU slot if you share one)::

    python benchmarks/mutation.py                      # every module
    python benchmarks/mutation.py split augment        # some of them
    python benchmarks/mutation.py --list
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
TARGET = 0.85


@dataclass(frozen=True)
class Module:
    """One mutation target: a source file, its fast tests, optionally some functions."""

    path: str
    tests: tuple[str, ...]
    # Only mutants of these functions count (``x_<name>__mutmut_<n>`` or, in a
    # class, ``xǁ<Class>ǁ<name>__mutmut_<n>``); empty: the whole file.
    functions: tuple[str, ...] = ()


MODULES: dict[str, Module] = {
    "split": Module("src/kerasimgcls/data/_split.py", ("tests/test_data_core.py",)),
    "augment": Module(
        "src/kerasimgcls/data/_augment.py", ("tests/test_data_augment.py",)
    ),
    "schedules": Module(
        "src/kerasimgcls/training/_schedules.py",
        (
            "tests/test_training_options.py::test_warmup_schedule_shapes",
            "tests/test_training_options.py::test_triangle_schedule_is_airbenchs",
            "tests/test_training_options.py::test_make_schedule_shapes_and_checks",
        ),
    ),
    "evaluation": Module(
        "src/kerasimgcls/analysis/evaluation.py",
        tuple(
            f"tests/test_evaluation.py::{name}"
            for name in (
                "test_report_matches_the_hand_computed_case",
                "test_report_to_json_and_save",
                "test_report_prints_as_a_table",
                "test_top_k_is_capped_at_the_number_of_classes",
                "test_report_agrees_with_sklearn_on_random_predictions",
                "test_from_predictions_rejects_bad_input",
                "test_report_invariants",
                "test_report_defaults_keys_names_and_edges",
            )
        ),
        functions=(
            "from_predictions",
            "most_confused",
            "top_losses",
            "to_dict",
            "_average",
            "_sample_losses",
            "_scores",
        ),
    ),
    "lr_suggestion": Module(
        "src/kerasimgcls/analysis/lr_finder.py",
        (
            "tests/test_evaluation_lr_finder.py::"
            "test_suggestion_is_the_steepest_fall_before_the_minimum",
            "tests/test_evaluation_lr_finder.py::"
            "test_suggestion_ignores_the_warm_up_and_the_rise_after_the_minimum",
            "tests/test_evaluation_lr_finder.py::"
            "test_suggestion_skips_exactly_the_first_tenth_and_needs_three_points",
        ),
        functions=("_suggest",),
    ),
    "validation": Module(
        "src/kerasimgcls/_validation.py",
        (
            "tests/test_validation.py",
            "tests/test_data_core.py",
            "tests/test_blocks.py",
            "tests/test_hostile_data.py",
            "tests/test_hostile_images.py",
            "tests/test_hostile_models.py",
        ),
    ),
    "io": Module(
        "src/kerasimgcls/_io.py",
        (
            "tests/test_io.py",
            "tests/test_hostile_images.py",
            "tests/test_hostile_data.py",
        ),
    ),
    "safe_pickle": Module(
        "src/kerasimgcls/data/_safe_pickle.py",
        (
            "tests/test_data_safe_pickle.py",
            "tests/test_data_standard.py",
            "tests/test_hostile_data.py",
        ),
    ),
    "arrays": Module(
        "src/kerasimgcls/data/_arrays.py",
        (
            "tests/test_data_arrays.py",
            "tests/test_data_core.py",
            "tests/test_hostile_data.py",
        ),
    ),
    # The directory handling only: the rest (describe_run, environment) needs a
    # Trainer. mutmut never mutates decorated functions (run_dir_lock and
    # recording_failures are context managers, checkpoint a property); their
    # helpers are listed and mutated.
    "run_dir": Module(
        "src/kerasimgcls/training/_run_dir.py",
        ("tests/test_run_dir.py",),
        functions=(
            "utc_now",
            "_check_writable",
            "_remove_run_files",
            "_partial_writes",
            "_remove_partial_writes",
            "_run_status",
            "_restartable",
            "prepare_run_dir",
            "run_dir_lock",
            "_remove_lone_lock",
            "_may_hold_a_run",
            "_lock_owner",
            "recording_failures",
            "_mark_interrupted",
            "_write_small_json",
            "locks_run_dir",
            "write_metrics",
            # RunDirectory's methods (``xǁRunDirectoryǁ<name>``)
            "__init__",
            "checkpoint",
            "prepare",
            "begin",
            "set_status",
            "write_history",
            "finish",
            "_previous",
            "_write",
        ),
    ),
    # --- issue 25: where the risk is -------------------------------------------
    "tar_headers": Module(
        "src/kerasimgcls/data/_tar_headers.py",
        ("tests/test_safe_loaders.py", "tests/test_hostile_budget.py"),
    ),
    "extraction": Module(
        "src/kerasimgcls/data/_standard.py",
        ("tests/test_safe_loaders.py", "tests/test_hostile_data.py"),
        functions=(
            "_extract_once",
            "_archive_identity",
            "_is_current",
            "_extract_into",
            "_remove_stale_extraction",
            "_extract_checked",
            "_check_member_name",
        ),
    ),
    "exit_codes": Module(
        "src/kerasimgcls/cli/__init__.py",
        (
            "tests/test_cli_instant.py",
            "tests/test_hostile_messages.py",
            "tests/test_cli.py",
        ),
        functions=("_is_failed_run", "_raised_by_library", "exit_code_of"),
    ),
    "checkpoint": Module(
        "src/kerasimgcls/training/_checkpoint.py",
        ("tests/test_resume_fields.py", "tests/test_hostile_state.py"),
        functions=("_check_config",),
    ),
    "state": Module(
        "src/kerasimgcls/training/_state.py",
        (
            "tests/test_training_callbacks.py::test_keras_early_stopping_state_round_trips",
            "tests/test_hostile_state.py",
        ),
    ),
    "scaling": Module(
        "src/kerasimgcls/_scaling.py",
        (
            "tests/test_input_contract.py::test_resolve_input_scaling_decides_from_the_model",
            "tests/test_input_contract.py::test_scaling_evidence_inside_nested_models_is_found",
            "tests/test_tta.py",
        ),
    ),
    "tta": Module("src/kerasimgcls/_tta.py", ("tests/test_tta.py",)),
}

_KILLED = {"killed", "timeout"}
_RESULT_LINE = re.compile(r"^\s*(?P<name>\S+__mutmut_\d+): (?P<status>.+?)\s*$")


def _mutmut(folder: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["TF_CPP_MIN_LOG_LEVEL"] = "3"
    mutmut = Path(sys.executable).with_name("mutmut")
    return subprocess.run(
        [str(mutmut), *args], cwd=folder, env=env, capture_output=True, text=True
    )


def _counts(name: str, functions: tuple[str, ...]) -> bool:
    if not functions:
        return True
    function = name.rsplit(".", 1)[-1].split("__mutmut_")[0]
    function = function.split("ǁ")[-1] if "ǁ" in function else function[2:]
    return function in functions


def run_module(key: str, module: Module, *, max_children: int) -> dict[str, object]:
    """Run mutmut on one module in a scratch copy and return its summary."""
    with tempfile.TemporaryDirectory(prefix=f"mutation-{key}-") as scratch:
        folder = Path(scratch)
        shutil.copytree(REPO_ROOT / "src", folder / "src")
        shutil.copytree(
            REPO_ROOT / "tests",
            folder / "tests",
            ignore=shutil.ignore_patterns("__pycache__"),
        )
        shutil.copy(REPO_ROOT / "pyproject.toml", folder / "pyproject.toml")
        selection = "\n    ".join(module.tests)
        (folder / "setup.cfg").write_text(
            "[mutmut]\n"
            "source_paths=src\n"
            f"only_mutate={module.path}\n"
            f"pytest_add_cli_args_test_selection=\n    {selection}\n"
            "pytest_add_cli_args=-p no:cacheprovider -q -n 0 --timeout=60\n"
        )
        run = _mutmut(folder, "run", "--max-children", str(max_children))
        if run.returncode != 0:
            raise SystemExit(f"mutmut run failed for {key}:\n{run.stdout}{run.stderr}")
        listing = _mutmut(folder, "results", "--all", "true").stdout
        statuses: dict[str, str] = {}
        for line in listing.splitlines():
            match = _RESULT_LINE.match(line)
            if match and _counts(match["name"], module.functions):
                statuses[match["name"]] = match["status"]
        survivors = {}
        for name, status in statuses.items():
            if status not in _KILLED:
                shown = _mutmut(folder, "show", name).stdout
                survivors[name] = {"status": status, "diff": _diff_only(shown)}
    killed = sum(status in _KILLED for status in statuses.values())
    return {
        "module": module.path,
        "functions": list(module.functions),
        "tests": list(module.tests),
        "mutants": len(statuses),
        "killed": killed,
        "score": round(killed / len(statuses), 4) if statuses else None,
        "survivors": survivors,
    }


def _diff_only(shown: str) -> str:
    lines = shown.splitlines()
    start = next((i for i, line in enumerate(lines) if line.startswith("@@")), 0)
    return "\n".join(line for line in lines[start:] if line[:1] in "+-@")


def write_reports(summary: dict[str, dict[str, object]]) -> None:
    """Write summary.json and summary.md (modules in the order of MODULES)."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    ordered = {key: summary[key] for key in MODULES if key in summary}
    (RESULTS / "summary.json").write_text(json.dumps(ordered, indent=2) + "\n")
    lines = [
        "# Mutation testing (mutmut)",
        "",
        "Written by `python benchmarks/mutation.py`; see docs/contributing/testing.md.",
        "",
        "| module | tests | mutants | killed | score | run |",
        "| --- | --- | ---: | ---: | ---: | --- |",
    ]
    for entry in ordered.values():
        functions = entry["functions"]
        scope = f" ({', '.join(functions)})" if functions else ""  # type: ignore[arg-type]
        score = entry["score"]
        lines.append(
            f"| `{entry['module']}`{scope} | {', '.join(entry['tests'])} "  # type: ignore[arg-type]
            f"| {entry['mutants']} | {entry['killed']} "
            f"| {'-' if score is None else f'{score:.0%}'} | {entry['date']} |"
        )
    for key, entry in ordered.items():
        survivors: dict[str, dict[str, str]] = entry["survivors"]  # type: ignore[assignment]
        if not survivors:
            continue
        lines += ["", f"## Survivors in `{entry['module']}` ({key})", ""]
        for name, info in survivors.items():
            lines += [
                f"`{name}` ({info['status']}):",
                "",
                "```diff",
                info["diff"],
                "```",
            ]
    (RESULTS / "summary.md").write_text("\n".join(lines) + "\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("modules", nargs="*", help=f"default: all of {list(MODULES)}")
    parser.add_argument("--list", action="store_true", help="list the modules")
    parser.add_argument("--max-children", type=int, default=1)
    args = parser.parse_args(argv)
    if args.list:
        for key, module in MODULES.items():
            print(f"{key:14} {module.path}  <- {' '.join(module.tests)}")
        return 0
    unknown = sorted(set(args.modules) - set(MODULES))
    if unknown:
        parser.error(f"unknown modules {unknown}; available: {list(MODULES)}")
    path = RESULTS / "summary.json"
    for key in args.modules or list(MODULES):
        entry = run_module(key, MODULES[key], max_children=args.max_children)
        entry["date"] = datetime.date.today().isoformat()
        # Read the file again: another run may have updated other modules since.
        summary = json.loads(path.read_text()) if path.is_file() else {}
        summary[key] = entry
        write_reports(summary)
        score = entry["score"]
        flag = "" if score is not None and score >= TARGET else "  (below target)"
        print(f"{key}: {entry['killed']}/{entry['mutants']} killed{flag}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
