"""Keep TensorFlow's start-up lines off the command line's output.

TensorFlow writes them from C++ straight to file descriptor 2, partly before its
own log level applies ("All log messages before absl::InitializeLog() is called
are written to STDERR"), so ``TF_CPP_MIN_LOG_LEVEL`` alone does not silence them.
The environment is set before TensorFlow loads, and what still comes through is
filtered out of standard error line by line; every other line passes unchanged.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import sys
import threading
from collections.abc import Iterator

__all__ = ["is_tensorflow_noise", "quiet_tensorflow"]

_NOISE = re.compile(
    r"^(?:"
    r"[IWEF]\d{4} \d+:\d+:\d+\.\d+\s+\d+ \S+:\d+\] "  # absl's C++ log lines
    r"|\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+: [IWEF] \S+:\d+\] "  # older TensorFlow
    r"|WARNING: All log messages before absl::InitializeLog\(\) is called"
    r"|To enable the following instructions: .*rebuild TensorFlow"
    r"|INFO: Created TensorFlow Lite XNNPACK delegate"
    r")"
)

# Python loggers of the libraries below ours; their INFO and WARNING lines are
# start-up chatter, their errors still show.
_QUIET_LOGGERS = ("tensorflow", "absl", "tf2onnx", "h5py")


def is_tensorflow_noise(line: str) -> bool:
    """Whether ``line`` is one of TensorFlow's start-up or log lines.

    Example:
        >>> is_tensorflow_noise("I0000 00:00:17.04 6903 port.cc:153] oneDNN custom ops")
        True
        >>> is_tensorflow_noise("kerasimgcls train: error: --epochs must be positive")
        False
    """
    return _NOISE.match(line) is not None


@contextlib.contextmanager
def quiet_tensorflow() -> Iterator[None]:
    """Run the block with TensorFlow's start-up lines kept off standard error.

    Sets ``TF_CPP_MIN_LOG_LEVEL=3`` (unless the user set it) before TensorFlow is
    imported, lowers the Python loggers of TensorFlow and absl to errors, and, when
    this process has not imported TensorFlow yet, filters file descriptor 2.
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("GRPC_VERBOSITY", "ERROR")
    for name in _QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.ERROR)
    try:
        fd = sys.__stderr__.fileno() if sys.__stderr__ is not None else -1
    except (AttributeError, OSError, ValueError):  # no real stderr (embedded)
        fd = -1
    if fd < 0 or "tensorflow" in sys.modules:
        # Already loaded: its start-up lines are out, and this process's stderr
        # belongs to whoever imported it (a notebook, a test runner).
        yield
        return
    with _filtered(fd):
        yield


@contextlib.contextmanager
def _filtered(fd: int) -> Iterator[None]:
    saved = os.dup(fd)
    read_end, write_end = os.pipe()
    os.dup2(write_end, fd)
    os.close(write_end)
    thread = threading.Thread(target=_copy, args=(read_end, saved), daemon=True)
    thread.start()
    try:
        yield
    finally:
        with contextlib.suppress(OSError, ValueError):
            sys.stderr.flush()
        os.dup2(saved, fd)  # closes the pipe's last write end: the copier sees EOF
        thread.join(timeout=5.0)
        os.close(saved)


def _copy(read_end: int, target: int) -> None:
    with os.fdopen(read_end, "rb") as lines:
        for line in lines:
            if is_tensorflow_noise(line.decode("utf-8", "replace")):
                continue
            while line:
                line = line[os.write(target, line) :]
