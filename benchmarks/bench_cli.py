"""How fast the command line answers: ``--help``, ``--version`` and usage errors.

Each command line is started as a fresh process, interleaved with
``python -c "import tensorflow"`` so both see the same machine load, and timed
wall-clock from start to exit. The target is every ``--help``, ``--version`` and
usage error (a missing path, a value out of range, a mistyped flag: exit code 2,
answered before TensorFlow loads) in under 10% of TensorFlow's import time (the
median of the repeats).

    python benchmarks/bench_cli.py                      # writes results/bench_cli.json
    python benchmarks/bench_cli.py --src OTHER/src --output before.json

Exit code 1 when a command misses the target, so CI can run it as a check.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
COMMANDS = [
    "train",
    "evaluate",
    "predict",
    "explain",
    "report",
    "export",
    "lr-find",
    "doctor",
    "summary",
]
TARGET = 0.10
# Usage errors, each answered in one line with exit code 2 (tests/test_cli_instant.py).
USAGE_ERRORS = [
    "train --data-dir /no/such/dir",
    "train --epochs -1",
    "train --batch-size 0",
    "train --epohcs 3",
    "evaluate runs/does-not-exist",
    "predict runs/does-not-exist cat.jpg",
    "summary nope",
]


def _lscpu_model() -> str:
    try:
        output = subprocess.run(
            ["lscpu"], capture_output=True, text=True, check=True
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        return platform.processor() or "unknown"
    for line in output.splitlines():
        if line.startswith("Model name:"):
            return line.split(":", 1)[1].strip()
    return "unknown"


def _time(argv: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    completed = subprocess.run(argv, capture_output=True, env=env, check=False)
    elapsed = time.perf_counter() - start
    expected = 2 if " ".join(argv[3:]) in USAGE_ERRORS else 0
    if completed.returncode != expected:
        raise SystemExit(f"{argv} failed: {completed.stderr.decode()[-2000:]}")
    return elapsed


def measure(src: Path, repeats: int, commands: list[str]) -> dict[str, Any]:
    """Time each command line ``repeats`` times, interleaved with TensorFlow's import."""
    env = {**os.environ, "PYTHONPATH": str(src), "TF_CPP_MIN_LOG_LEVEL": "3"}
    cli = [sys.executable, "-m", "kerasimgcls"]
    lines = {"--help": [*cli, "--help"], "--version": [*cli, "--version"]}
    lines.update({f"{c} --help": [*cli, c, "--help"] for c in commands})
    lines.update({error: [*cli, *error.split()] for error in USAGE_ERRORS})
    lines["summary --list"] = [*cli, "summary", "--list"]
    baseline: list[float] = []
    times: dict[str, list[float]] = {name: [] for name in lines}
    for _ in range(repeats):
        baseline.append(_time([sys.executable, "-c", "import tensorflow"], env))
        for name, argv in lines.items():
            times[name].append(_time(argv, env))
    tensorflow = statistics.median(baseline)
    results = {
        name: {
            "median_s": round(statistics.median(values), 3),
            "runs_s": [round(v, 3) for v in values],
            "fraction_of_tensorflow_import": round(
                statistics.median(values) / tensorflow, 4
            ),
        }
        for name, values in times.items()
    }
    return {
        "tensorflow_import": {
            "median_s": round(tensorflow, 3),
            "runs_s": [round(v, 3) for v in baseline],
        },
        "commands": results,
        "target_fraction": TARGET,
        "all_under_target": all(
            r["fraction_of_tensorflow_import"] < TARGET for r in results.values()
        ),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--src", type=Path, default=ROOT / "src")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument(
        "--output",
        type=Path,
        default=ROOT / "benchmarks" / "results" / "bench_cli.json",
    )
    parser.add_argument(
        "--commands", nargs="*", default=COMMANDS, help="sub-commands to time"
    )
    args = parser.parse_args()
    load_before = [round(v, 2) for v in os.getloadavg()]
    result = measure(args.src.resolve(), args.repeats, args.commands)
    result["machine"] = {
        "cpu_model": _lscpu_model(),
        "cpu_count": os.cpu_count(),
        "load_average_before": load_before,
        "load_average_after": [round(v, 2) for v in os.getloadavg()],
        "python": platform.python_version(),
    }
    result["command"] = "python benchmarks/bench_cli.py " + " ".join(
        a for a in sys.argv[1:] if not a.startswith("/")
    )
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    tensorflow = result["tensorflow_import"]["median_s"]
    print(f"python -c 'import tensorflow': {tensorflow:.2f} s (median)")
    for name, item in result["commands"].items():
        print(
            f"kerasimgcls {name}: {item['median_s']:.3f} s "
            f"({100 * item['fraction_of_tensorflow_import']:.1f}%)"
        )
    print(f"wrote {args.output}")
    return 0 if result["all_under_target"] else 1


if __name__ == "__main__":
    sys.exit(main())
