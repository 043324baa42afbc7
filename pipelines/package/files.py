"""Reading a file that someone else wrote: never more than a fixed number of bytes."""

from __future__ import annotations

import errno
from pathlib import Path

INPUT_BYTES = 64 * 1024 * 1024  # a config, an export or a batch of records is far smaller; /dev/zero is not


def read_text_limited(path: Path, encoding: str = "utf-8", limit: int = INPUT_BYTES) -> str:
    """The file's text; OSError(EFBIG) when it holds more than limit bytes (read no further than that),
    OSError(EINVAL) when it is not a regular file (a FIFO would block forever, a device never ends).

    The file is opened without blocking and checked through its descriptor, so it cannot be swapped
    for a pipe between the check and the read."""
    import os
    import stat

    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(errno.EINVAL, "not a regular file (a pipe, a device or a directory); give the path of a file", str(path))
        with os.fdopen(fd, "rb", closefd=False) as fh:
            data = fh.read(limit + 1)
    finally:
        os.close(fd)
    if len(data) > limit:
        raise OSError(errno.EFBIG, f"larger than the {limit // (1024 * 1024)} MiB limit for an input file", str(path))
    return data.decode(encoding)


# JSON parsed into Python takes 20-70 times its size when it is many tiny values ([{},{},...] or
# [1,1,...]); a real export or batch of records has well under this many value separators, and this
# many tiny values stay under about 300 MB in memory
MAX_JSON_SEPARATORS = 2_000_000


def json_size_problem(text: str) -> str | None:
    """Why text holds too many JSON values to parse safely, or None. Counts , : [ and { wherever
    they are (inside strings too, which only errs on the safe side): every value but the first of a
    container follows a separator, and every container opens with a bracket, so nested empty arrays
    count as much as a long flat list."""
    n = text.count(",") + text.count(":") + text.count("[") + text.count("{")
    if n > MAX_JSON_SEPARATORS:
        return f"it holds {n:,} value separators and brackets (, : [ {{); the limit is {MAX_JSON_SEPARATORS:,}, which bounds the memory a parse can take"
    return None


INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1  # what an integer column of the release holds (BIGINT)


def no_duplicate_keys(pairs):
    """json.loads object_pairs_hook: a key repeated in one object is an error (a reader would keep one value)."""
    import json

    keys = [k for k, _ in pairs]
    if len(keys) != len(set(keys)):
        dup = next(k for k in keys if keys.count(k) > 1)
        shown = json.dumps(dup)
        raise ValueError(f"the key {shown if len(shown) <= 60 else shown[:60] + '...'} appears twice in one object")
    return dict(pairs)


def no_json_constant(name: str):
    """json.loads parse_constant: NaN and Infinity are not JSON numbers."""
    raise ValueError(f"{name} is not a JSON number")


def finite_float(text: str) -> float:
    """json.loads parse_float: a number too large for a float (1e400) is an error, not infinity."""
    import math

    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"{text[:40]} is too large for a JSON number a reader can hold")
    return value


def strict_json(text: str):
    """json.loads with the project's rules: no repeated key in an object, no NaN, Infinity or overflowing number."""
    import json

    return json.loads(text, object_pairs_hook=no_duplicate_keys, parse_constant=no_json_constant, parse_float=finite_float)


class JSONInputError(ValueError):
    """Text that is not JSON, or nests too deeply; the message names the file, position and fix."""


def parse_json_input(path: Path, text: str, what: str, fix: str):
    """The JSON value in text read from path; a located JSONInputError otherwise (what: 'a model config')."""
    import json

    problem = json_size_problem(text)
    if problem:
        raise JSONInputError(f"{path}: {problem}\n\nfix: {fix}")

    try:
        return strict_json(text)
    except json.JSONDecodeError as exc:
        raise JSONInputError(f"{path}:{exc.lineno}:{exc.colno}: not valid JSON: {exc.msg}\n\nfix: {fix}") from None
    except RecursionError:
        raise JSONInputError(f"{path}: the JSON nests too deeply to be {what}\n\nfix: {fix}") from None
    except ValueError as exc:  # a number too long for Python to convert, a repeated key, NaN
        raise JSONInputError(f"{path}: {exc}\n\nfix: {fix}") from None
