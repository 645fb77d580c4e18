"""Private ``check_*`` helpers: the one place user input is checked.

Every helper raises with a message that names the argument exactly as the public
signature spells it, says what is allowed and shows what was received.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
import os
import reprlib
import unicodedata
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    import numpy as np

__all__ = [
    "DEFAULT_BUDGET",
    "DEFAULT_LIMITS",
    "PRECISIONS",
    "ResourceBudget",
    "check_activation",
    "check_bool",
    "check_choice",
    "check_class_names",
    "check_finite",
    "check_image_size",
    "check_input_shape",
    "check_int_pair",
    "check_label_values",
    "check_labels",
    "check_memory_for",
    "check_min_size",
    "check_num_classes",
    "check_optional_rate",
    "check_path_exists",
    "check_positive_int",
    "check_precision",
    "check_rate",
    "check_scalar",
    "check_seed",
    "check_within_limit",
    "limit",
    "printable",
    "resolve_class_names",
    "short_repr",
]


def check_scalar(
    value: object,
    name: str,
    *,
    kind: type[int] | type[float] = float,
    min_val: float | None = None,
    max_val: float | None = None,
    include_min: bool = True,
    include_max: bool = True,
    allow_none: bool = False,
    expected: str | None = None,
) -> Any:
    """Check one numeric argument and return it as ``int`` or ``float``.

    The one helper for every numeric argument, after scikit-learn's
    ``check_scalar``: the type (``bool`` is never a number here), finiteness, and
    the bounds, each failure naming the argument and what was received.

    Args:
        value: The value passed by the user.
        name: The argument's name as the public signature spells it.
        kind: ``int`` to require an integer, ``float`` to accept any real number.
        min_val: Lower bound, or ``None`` for none.
        max_val: Upper bound, or ``None`` for none.
        include_min: Whether ``min_val`` itself is allowed.
        include_max: Whether ``max_val`` itself is allowed.
        allow_none: Whether ``None`` is accepted (and returned as is).
        expected: What is allowed, in words (``"a positive float"``, ``"in [0,
            1)"``); given, every failure says ``{name} must be {expected}``
            instead of naming the one condition that failed.

    Returns:
        ``value`` as ``int`` or ``float`` (or ``None`` where allowed).

    Raises:
        TypeError: If ``value`` is not a number of the required kind.
        ValueError: If ``value`` is not finite or lies outside the bounds.

    Example:
        >>> check_scalar(0.5, "dropout", min_val=0, max_val=1, include_max=False)
        0.5
        >>> check_scalar(0, "epochs", kind=int, min_val=1)
        Traceback (most recent call last):
        ...
        ValueError: epochs must be >= 1; received epochs=0
        >>> check_scalar(-1, "alpha", min_val=0, max_val=1, expected="in [0, 1]")
        Traceback (most recent call last):
        ...
        ValueError: alpha must be in [0, 1]; received alpha=-1
    """
    if value is None and allow_none:
        return None
    wanted = numbers.Integral if kind is int else numbers.Real
    if isinstance(value, bool) or not isinstance(value, wanted):
        what = expected or ("an integer" if kind is int else "a number")
        if allow_none and expected is None:
            what += " or None"
        raise TypeError(
            f"{name} must be {what}; received {name}={value!r} "
            f"of type {type(value).__name__}"
        )
    number: float = int(value) if kind is int else float(value)  # type: ignore[call-overload]
    problem = _scalar_problem(number, min_val, max_val, include_min, include_max)
    if problem is not None:
        raise ValueError(
            f"{name} must be {expected or problem}; received {name}={value!r}"
        )
    return number


def _scalar_problem(
    number: float,
    min_val: float | None,
    max_val: float | None,
    include_min: bool,
    include_max: bool,
) -> str | None:
    """What ``number`` fails, worded after "must be", or ``None``."""
    if not math.isfinite(number):
        return "finite"
    if min_val is not None and (
        number < min_val or (number == min_val and not include_min)
    ):
        return f"{'>=' if include_min else '>'} {min_val:g}"
    if max_val is not None and (
        number > max_val or (number == max_val and not include_max)
    ):
        return f"{'<=' if include_max else '<'} {max_val:g}"
    return None


def check_positive_int(value: object, name: str, *, allow_zero: bool = False) -> int:
    """Return ``value`` as an ``int`` if it is a positive integer (or zero if allowed).

    Raises:
        TypeError: If ``value`` is not an integer (``bool`` is rejected too).
        ValueError: If ``value`` is not positive.
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(
            f"{name} must be an integer; received {name}={value!r} "
            f"of type {type(value).__name__}"
        )
    low = 0 if allow_zero else 1
    if value < low:
        bound = "a non-negative" if allow_zero else "a positive"
        raise ValueError(f"{name} must be {bound} integer; received {name}={value!r}")
    return int(value)


def check_int_pair(value: object, name: str) -> tuple[int, int]:
    """Return ``value`` as a pair of positive ints; a single int ``k`` means ``(k, k)``.

    Raises:
        TypeError: If ``value`` is neither an integer nor a sequence of two integers.
        ValueError: If any entry is not positive.
    """
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        size = check_positive_int(value, name)
        return (size, size)
    if isinstance(value, Sequence) and not isinstance(value, str) and len(value) == 2:
        first = check_positive_int(value[0], name)
        second = check_positive_int(value[1], name)
        return (first, second)
    raise TypeError(
        f"{name} must be a positive integer or a pair of positive integers; "
        f"received {name}={value!r}"
    )


def check_input_shape(value: object, name: str = "input_shape") -> tuple[int, int, int]:
    """Return ``value`` as ``(height, width, channels)`` of positive ints.

    Raises:
        ValueError: If ``value`` is not a sequence of three entries.
        TypeError: If an entry is not an integer.
    """
    if not isinstance(value, Sequence) or isinstance(value, str) or len(value) != 3:
        raise ValueError(
            f"{name} must be (height, width, channels); received {name}={value!r}"
        )
    height, width, channels = (check_positive_int(size, name) for size in value)
    check_within_limit(max(height, width), f"each side of {name}", "max_image_side")
    if channels > 64:
        raise ValueError(
            f"{name} must have at most 64 channels; received {name}={tuple(value)!r}"
        )
    return (height, width, channels)


def check_rate(value: object, name: str) -> float:
    """Return ``value`` as a float in ``[0, 1)``.

    Raises:
        TypeError: If ``value`` is not a real number.
        ValueError: If ``value`` is outside ``[0, 1)`` or not finite.
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(
            f"{name} must be a float in [0, 1); received {name}={value!r} "
            f"of type {type(value).__name__}"
        )
    rate = float(value)
    if not 0.0 <= rate < 1.0:
        raise ValueError(f"{name} must be in [0, 1); received {name}={value!r}")
    return rate


def check_optional_rate(value: object, name: str) -> float | None:
    """Like :func:`check_rate`, but ``None`` (and ``0``) mean "no layer"."""
    if value is None:
        return None
    rate = check_rate(value, name)
    return rate if rate > 0.0 else None


def check_bool(value: object, name: str) -> bool:
    """Return ``value`` if it is ``True`` or ``False`` (not 0, 1 or a string).

    Raises:
        TypeError: If ``value`` is not a bool.

    Example:
        >>> check_bool(True, "lookahead")
        True
    """
    if not isinstance(value, bool):
        raise TypeError(f"{name} must be True or False; received {name}={value!r}")
    return value


def check_choice(value: object, name: str, choices: Sequence[str]) -> str:
    """Return ``value`` if it is one of ``choices``.

    Raises:
        ValueError: If ``value`` is not one of ``choices``; the message lists them.
    """
    if not isinstance(value, str) or value not in choices:
        raise ValueError(
            f"{name} must be one of {sorted(choices)}; received {name}={value!r}"
        )
    return value


def check_activation(value: object, name: str = "activation") -> str:
    """Return ``value`` if Keras knows an activation of that name.

    Raises:
        ValueError: If Keras has no activation called ``value``.
    """
    import keras

    if not isinstance(value, str):
        raise TypeError(
            f"{name} must be the name of a Keras activation such as 'relu'; "
            f"received {name}={value!r}"
        )
    try:
        keras.activations.get(value)
    except (ValueError, TypeError) as err:
        raise ValueError(
            f"{name} must be the name of a Keras activation such as 'relu', "
            f"'gelu' or 'softmax'; received {name}={value!r}"
        ) from err
    return value


def check_labels(
    labels: Any,
    num_classes: int,
    name: str = "labels",
    *,
    rows: tuple[str, int] | None = None,
) -> np.ndarray[Any, np.dtype[np.int64]]:
    """Return ``labels`` as a 1-D int64 array with every value in ``[0, num_classes)``.

    ``rows``, ``(what, count)``, also requires one label per row of ``what``.

    Raises:
        ValueError: If ``labels`` is not 1-D integral, a label is out of range (the
            message names the first bad value and its index), or their number is
            not ``rows``' count.
    """
    import numpy as np  # here: the command line's checks must not wait for NumPy

    array = np.asarray(labels)
    if array.ndim == 2 and array.shape[1] == 1:
        array = array[:, 0]
    if array.ndim != 1:
        raise ValueError(
            f"{name} must be a 1-D array of integer class indices; "
            f"received an array of shape {array.shape}"
        )
    integral = np.issubdtype(array.dtype, np.integer)
    whole_floats = np.issubdtype(array.dtype, np.floating) and bool(
        np.all(np.isfinite(array) & (array == np.round(array)))
    )
    if array.size and not (integral or whole_floats):
        raise ValueError(
            f"{name} must hold integer class indices; received dtype {array.dtype}"
        )
    array = array.astype(np.int64, copy=False)
    bad = np.flatnonzero((array < 0) | (array >= num_classes))
    if bad.size:
        index = int(bad[0])
        raise ValueError(
            f"{name} must be in [0, num_classes) = [0, {num_classes}); "
            f"received {name}[{index}]={int(array[index])} "
            f"({bad.size} value(s) out of range)"
        )
    if rows is not None and len(array) != rows[1]:
        raise ValueError(
            f"{name} must have one entry per row of {rows[0]} ({rows[1]}); "
            f"received {len(array)}"
        )
    return array


def check_path_exists(
    path: str | os.PathLike[str],
    name: str,
    *,
    kind: Literal["file", "dir", "any"] = "any",
) -> Path:
    """Return ``path`` as a :class:`~pathlib.Path` if it exists (as the given kind).

    Raises:
        FileNotFoundError: If nothing exists at ``path``.
        NotADirectoryError: If ``kind="dir"`` and ``path`` is not a directory.
        IsADirectoryError: If ``kind="file"`` and ``path`` is a directory.
    """
    resolved = Path(path)
    if not resolved.exists():
        raise FileNotFoundError(f"{name} does not exist: {str(resolved)!r}")
    if kind == "dir" and not resolved.is_dir():
        raise NotADirectoryError(f"{name} must be a directory: {str(resolved)!r}")
    if kind == "file" and resolved.is_dir():
        raise IsADirectoryError(f"{name} must be a file: {str(resolved)!r}")
    return resolved


# --- bounds on what untrusted input may make the library allocate -----------------


@dataclasses.dataclass(frozen=True)
class ResourceBudget:
    """What one untrusted file may make the library read, allocate or write.

    The resource budget, stated once: every loader checks its input against these
    numbers before anything of that size is allocated, and the security page
    lists them. Each can be raised (or lowered) for a process with the
    environment variable ``KERASIMGCLS_<NAME>`` in capitals, e.g.
    ``KERASIMGCLS_MAX_IMAGE_SIDE=16384`` (see :func:`limit`).

    Time is bounded by the same numbers: each reader does work linear in the
    bytes, pickle opcodes, archive headers or pixels it may accept, so no file
    within the budget takes longer than reading that much.

    Attributes:
        max_image_side: Each side of ``image_size`` a loader resizes to, and of a
            model's ``input_shape``.
        max_image_pixels: Pixels of one decoded image file (a decompression bomb
            is refused from its header, before it is decoded); 8192 x 8192.
        max_image_file_bytes: Bytes of one image file.
        max_classes: Classes of one dataset (ImageNet-21k has 21,841).
        max_archive_members: Members of a dataset archive (and of a ``.keras``
            file).
        max_archive_bytes: Bytes of a whole archive, packed and unpacked, header
            bodies included.
        max_archive_member_bytes: Bytes of one archive member.
        max_archive_header_bytes: Bytes of one extended tar header (a PAX
            header, a GNU long name or long link), read before the member.
        max_archive_path_depth: Folders in the name of one archive member.
        max_data_file_bytes: Bytes of one dataset file (a CIFAR batch pickle, an
            IDX file after gunzip, an ``.npz`` member).
        max_pickle_opcodes: Opcodes of one dataset pickle (a CIFAR-100 batch has
            about 200,000); also the bound on its memo indexes.
        max_pickle_objects: Distinct containers and values one pickle may build.
        max_model_config_bytes: Bytes of the ``config.json`` (and
            ``metadata.json``) inside a ``.keras`` file, unpacked.
        max_model_bytes: Bytes of a whole ``.keras`` file, unpacked.
    """

    max_image_side: int = 8192
    max_image_pixels: int = 8192 * 8192
    max_image_file_bytes: int = 256 << 20
    max_classes: int = 100_000
    max_archive_members: int = 10_000
    max_archive_bytes: int = 2 << 30
    max_archive_member_bytes: int = 1 << 30
    max_archive_header_bytes: int = 1 << 20
    max_archive_path_depth: int = 64
    max_data_file_bytes: int = 1 << 30
    max_pickle_opcodes: int = 2_000_000
    max_pickle_objects: int = 1_000_000
    max_model_config_bytes: int = 16 << 20
    max_model_bytes: int = 8 << 30


#: The default budget; :func:`limit` applies the environment's overrides.
DEFAULT_BUDGET = ResourceBudget()
#: The same numbers by name (read-only).
DEFAULT_LIMITS: Mapping[str, int] = MappingProxyType(dataclasses.asdict(DEFAULT_BUDGET))


def limit(name: str) -> int:
    """Return the bound ``name`` of :data:`DEFAULT_LIMITS`, or its environment override.

    Raises:
        KeyError: If ``name`` is not a known bound.
        ValueError: If ``KERASIMGCLS_<NAME>`` is set but not a positive integer.
    """
    default = DEFAULT_LIMITS[name]
    variable = f"KERASIMGCLS_{name.upper()}"
    text = os.environ.get(variable)
    if text is None or not text.strip():
        return default
    try:
        value = int(text.strip().replace("_", ""))
    except ValueError:
        value = 0
    if value < 1:
        raise ValueError(
            f"the environment variable {variable} must be a positive integer; "
            f"received {variable}={text!r}"
        )
    return value


def check_within_limit(value: int, name: str, bound: str) -> int:
    """Return ``value`` if it is at most :func:`limit` ``(bound)``.

    Raises:
        ValueError: If it is larger; the message names ``name``, the bound and the
            environment variable that raises it.
    """
    maximum = limit(bound)
    if value > maximum:
        raise ValueError(
            f"{name} must be at most {maximum:,}; received {name}={value!r}. If "
            f"this is intended, raise the bound with KERASIMGCLS_{bound.upper()}"
        )
    return value


def check_image_size(value: object, name: str = "image_size") -> tuple[int, int]:
    """Return ``value`` as ``(height, width)`` of positive ints within the side bound.

    Raises:
        TypeError: If ``value`` is neither an integer nor a pair of integers.
        ValueError: If a side is not positive or above ``max_image_side``.
    """
    height, width = check_int_pair(value, name)
    check_within_limit(max(height, width), f"each side of {name}", "max_image_side")
    return height, width


def check_num_classes(count: int, name: str = "class_names") -> int:
    """Return ``count`` if it is at most the ``max_classes`` bound.

    Raises:
        ValueError: If there are more classes than the bound allows.
    """
    return check_within_limit(count, f"the number of classes ({name})", "max_classes")


def check_seed(value: object, name: str = "seed") -> int:
    """Return ``value`` if it is an integer in ``[0, 2**32)`` (NumPy's seed range).

    Raises:
        TypeError: If ``value`` is not an integer (``bool`` is rejected too).
        ValueError: If it is negative or too large.
    """
    seed = check_positive_int(value, name, allow_zero=True)
    if seed >= 2**32:
        raise ValueError(f"{name} must be below 2**32; received {name}={value!r}")
    return seed


def check_memory_for(shape: Sequence[int], what: str) -> None:
    """Refuse to allocate a uint8 array of ``shape`` larger than this machine's memory.

    Raises:
        ValueError: If the array would need more bytes than the physical memory;
            the message names ``what`` and the size.
    """
    needed = 1
    for side in shape:
        needed *= int(side)
    try:
        physical = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):  # pragma: no cover - not POSIX
        return
    if physical > 0 and needed > physical:
        raise ValueError(
            f"{what} of shape {tuple(int(s) for s in shape)} would need "
            f"{needed / 2**30:.1f} GiB, more than this machine's "
            f"{physical / 2**30:.1f} GiB of memory; use a smaller image_size or "
            "fewer images"
        )


def check_class_names(names: Any, name: str = "class_names") -> tuple[str, ...]:
    """Return ``names`` as a tuple of printable, non-empty, unique strings.

    Class names go into ``run.json``, the saved model, CSV files and the terminal,
    so each must be a ``str`` without control characters (a terminal escape code
    in a folder name would otherwise be printed raw).

    Raises:
        TypeError: If ``names`` is a string or not a sequence, or an entry is not
            a string.
        ValueError: If an entry is empty or holds control characters or text
            that is not valid Unicode, or there are more than ``max_classes``.
    """
    if isinstance(names, str | bytes):
        raise TypeError(
            f"{name} must be a sequence of strings, not one string; received "
            f"{name}={names[:80]!r:.80}"
        )
    if not isinstance(names, Sequence):
        raise TypeError(
            f"{name} must be a sequence of strings; received {name}={short_repr(names, 80)}"
        )
    check_num_classes(len(names), name)
    checked = []
    for index, entry in enumerate(names):
        if not isinstance(entry, str):
            raise TypeError(
                f"{name} must hold strings; received {name}[{index}]={short_repr(entry, 80)} "
                f"of type {type(entry).__name__}"
            )
        if not entry:
            raise ValueError(f"{name}[{index}] is an empty string")
        if any(_is_control(char) for char in entry):
            raise ValueError(
                f"{name}[{index}]={short_repr(entry)} holds control characters or "
                "bytes that are not valid UTF-8; rename it"
            )
        checked.append(str(entry))
    if len(set(checked)) != len(checked):
        twice = next(entry for entry in checked if checked.count(entry) > 1)
        raise ValueError(
            f"{name} must be unique; {short_repr(twice)} appears more than once"
        )
    return tuple(checked)


def resolve_class_names(
    class_names: Sequence[str] | None, num_classes: int
) -> tuple[str, ...]:
    """Return one name per class: ``class_names`` as strings, or ``"0"``, ``"1"``...

    Raises:
        TypeError: If ``class_names`` is one string.
        ValueError: If it does not have ``num_classes`` names.
    """
    if class_names is None:
        return tuple(str(index) for index in range(num_classes))
    if isinstance(class_names, str):
        raise TypeError(
            f"class_names must be a sequence of names, not a string; "
            f"received class_names={class_names!r}"
        )
    names = tuple(str(name) for name in class_names)
    if len(names) != num_classes:
        raise ValueError(
            f"class_names must have one name per class ({num_classes}); "
            f"received {len(names)} names"
        )
    return names


# Unicode categories never printed raw: controls (C0, C1, DEL), format characters
# (bidirectional overrides such as U+202E, zero-width characters), lone surrogates
# (undecodable bytes of a file name), line and paragraph separators.
_UNPRINTABLE = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})


def _is_control(char: str) -> bool:
    return unicodedata.category(char) in _UNPRINTABLE


def printable(text: str) -> str:
    r"""Return ``text`` with control and format characters escaped, for a terminal.

    A file or class name read from disk may hold a newline (which would forge a
    line of a report), ``ESC[2J`` (which clears the screen) or a right-to-left
    override; each such character is shown as its escape instead.

    Example:
        >>> printable("cat\nPROBLEM \x1b[2J\u202e")
        'cat\\nPROBLEM \\x1b[2J\\u202e'
    """
    if all(not _is_control(char) for char in text):
        return text
    out = []
    for char in text:
        if not _is_control(char):
            out.append(char)
        elif char in "\n\r\t":
            out.append({"\n": "\\n", "\r": "\\r", "\t": "\\t"}[char])
        elif ord(char) < 0x100:
            out.append(f"\\x{ord(char):02x}")
        else:
            out.append(f"\\u{ord(char):04x}")
    return "".join(out)


class _ShortRepr(reprlib.Repr):
    """``reprlib`` bounds containers and text; bytes too (a 30 MB batch)."""

    def repr_bytes(self, value: bytes, level: int) -> str:
        return reprlib.Repr.repr_str(self, value[: self.maxstring], level)  # type: ignore[arg-type]

    def repr_bytearray(self, value: bytearray, level: int) -> str:
        return self.repr_bytes(bytes(value[: self.maxstring]), level)


_SHORT_REPR = _ShortRepr()
_SHORT_REPR.maxlevel = 3
_SHORT_REPR.maxstring = 60
_SHORT_REPR.maxother = 60
_SHORT_REPR.maxlong = 40
for _attribute in ("maxlist", "maxtuple", "maxdict", "maxset", "maxfrozenset"):
    setattr(_SHORT_REPR, _attribute, 10)


def short_repr(value: object, limit: int = 80) -> str:
    """Return a bounded ``repr`` of ``value`` for an error message.

    ``f"{value!r:.60}"`` builds the whole ``repr`` before cutting it, which for a
    crafted object (a list that holds itself twice, forty levels deep) never
    ends; this looks at a few levels and items only, and escapes control
    characters.

    Example:
        >>> x = []
        >>> for _ in range(40):
        ...     x = [x, x]
        >>> short_repr(x)
        '[[[[...], [...]], [[...], [...]]], [[[...], [...]], [[...], [...]]]]'
    """
    text = printable(_SHORT_REPR.repr(value))
    return text if len(text) <= limit else text[: limit - 3] + "..."


def check_finite(array: Any, name: str) -> None:
    """Refuse a float array holding NaN or infinity.

    Raises:
        ValueError: If ``array`` is a floating-point array with a non-finite
            value; the message names ``name`` and the first bad index.
    """
    import numpy as np

    values = np.asarray(array)
    if not np.issubdtype(values.dtype, np.inexact) or values.size == 0:
        return
    finite = np.isfinite(values)
    if not bool(finite.all()):
        index = tuple(int(i) for i in np.argwhere(~finite)[0])
        raise ValueError(
            f"{name} must be finite; received {float(values[index])} at index {index} "
            f"({int((~finite).sum())} non-finite value(s))"
        )


def check_label_values(labels: Any, name: str = "labels") -> Any:
    """Return ``labels`` unchanged if no entry is a bool or a non-whole number.

    ``np.asarray([True, 0, 1])`` silently becomes ``[1, 0, 1]`` and ``astype`` turns
    ``0.5`` into ``0``; this check runs before either can happen. Whole floats
    (``1.0``, as a CSV reader gives) are accepted.

    Raises:
        TypeError: If a label is a bool, or the labels are neither numbers nor an
            array of numbers.
        ValueError: If a label is a non-whole or non-finite number.
    """
    import numpy as np

    array = np.asarray(labels) if not isinstance(labels, np.ndarray) else labels
    if array.dtype == np.bool_:
        raise TypeError(
            f"{name} must be integer class indices, not booleans; received dtype bool"
        )
    if array.dtype == object or not isinstance(labels, np.ndarray):
        flat = labels if isinstance(labels, list | tuple) else array.ravel().tolist()
        for index, value in enumerate(flat):
            if isinstance(value, bool | np.bool_):
                raise TypeError(
                    f"{name} must be integer class indices, not booleans; received "
                    f"{name}[{index}]={value!r}"
                )
            if isinstance(value, list | tuple | np.ndarray):
                break  # nested (one-hot or column) labels: check_labels decides
            if not isinstance(value, numbers.Real):
                raise TypeError(
                    f"{name} must hold integer class indices; received "
                    f"{name}[{index}]={short_repr(value, 80)} of type {type(value).__name__}"
                )
    if np.issubdtype(array.dtype, np.floating):
        bad = np.flatnonzero(~np.isfinite(array) | (array != np.round(array)))
        if bad.size:
            index = int(bad[0])
            raise ValueError(
                f"{name} must hold whole class indices; received "
                f"{name}[{index}]={float(array.ravel()[index])!r}"
            )
    return labels


# The compute precisions (see kerasimgcls.models.layers.PRECISIONS); here so the recipes and
# the command line can check them without importing Keras.
PRECISIONS = ("float32", "mixed_bfloat16")


def check_precision(precision: object) -> str:
    """Return ``precision`` if it is a known precision, else raise ValueError."""
    if precision not in PRECISIONS:
        raise ValueError(
            f"precision must be one of {list(PRECISIONS)}; received "
            f"precision={precision!r}"
        )
    return str(precision)


def check_min_size(
    shape: tuple[int, int, int], input_shape: Sequence[int], size: int, reason: str
) -> None:
    """Raise unless ``shape`` is at least ``size x size`` (``reason`` says why)."""
    if min(shape[:2]) < size:
        raise ValueError(
            f"input_shape must be at least {size}x{size} for {reason}; "
            f"received input_shape={tuple(input_shape)!r}"
        )
