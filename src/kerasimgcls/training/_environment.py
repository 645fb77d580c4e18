"""The machine a run ran on: versions, CPU (and its AMX), load, host."""

from __future__ import annotations

import contextlib
import datetime as _dt
import os
import platform
import sys
from pathlib import Path
from typing import Any

__all__ = ["environment", "load_average", "utc_now"]


def _cpuinfo() -> dict[str, str]:
    """The first value of each field of ``/proc/cpuinfo`` (empty where there is none)."""
    fields: dict[str, str] = {}
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, colon, value = line.partition(":")
            if colon:
                fields.setdefault(key.strip(), value.strip())
    return fields


def load_average() -> list[float] | None:
    """The 1, 5 and 15-minute load averages (``None`` where the OS has none)."""
    try:
        return [round(value, 2) for value in os.getloadavg()]
    except (AttributeError, OSError):
        return None


def environment() -> dict[str, Any]:
    """Return the versions and hardware a run executed on.

    The hardware names the CPU, whether it has AMX and AVX512-BF16 (what decides
    the speed of ``mixed_bfloat16``), and the load average when the run started, so
    a timing can be read against what the machine carried.
    """
    import keras
    import numpy as np
    import tensorflow as tf

    from kerasimgcls._version import __version__

    devices = [
        f"{device.device_type}:{device.name}"
        for device in tf.config.list_logical_devices()
    ]
    cpuinfo = _cpuinfo()
    flags = set(cpuinfo.get("flags", "").split())
    return {
        "versions": {
            "kerasimgcls": __version__,
            "tensorflow": tf.__version__,
            "keras": keras.__version__,
            "numpy": np.__version__,
            "python": platform.python_version(),
        },
        "hardware": {
            "platform": platform.platform(),
            "machine": platform.machine(),
            "cpu": cpuinfo.get("model name")
            or platform.processor()
            or platform.machine(),
            "cpu_count": os.cpu_count(),
            "amx": "amx_tile" in flags,
            "avx512_bf16": "avx512_bf16" in flags,
            "devices": devices,
            "load_average_at_start": load_average(),
        },
        "python_executable": Path(sys.executable).name,
    }


def utc_now() -> str:
    """Return the current UTC time in ISO 8601 with seconds."""
    return _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")
