"""Reading a file that someone else wrote: never more than a fixed number of bytes."""

from __future__ import annotations

import errno
from pathlib import Path

INPUT_BYTES = 64 * 1024 * 1024  # a config, an export or a batch of records is far smaller; /dev/zero is not


def read_text_limited(path: Path, encoding: str = "utf-8", limit: int = INPUT_BYTES) -> str:
    """The file's text; OSError(EFBIG) when it holds more than limit bytes (read no further than that)."""
    with open(path, "rb") as fh:
        data = fh.read(limit + 1)
    if len(data) > limit:
        raise OSError(errno.EFBIG, f"larger than the {limit // (1024 * 1024)} MiB limit for an input file", str(path))
    return data.decode(encoding)


class JSONInputError(ValueError):
    """Text that is not JSON, or nests too deeply; the message names the file, position and fix."""


def parse_json_input(path: Path, text: str, what: str, fix: str):
    """The JSON value in text read from path; a located JSONInputError otherwise (what: 'a model config')."""
    import json

    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise JSONInputError(f"{path}:{exc.lineno}:{exc.colno}: not valid JSON: {exc.msg}\n\nfix: {fix}") from None
    except RecursionError:
        raise JSONInputError(f"{path}: the JSON nests too deeply to be {what}\n\nfix: {fix}") from None
    except ValueError as exc:  # a number too long for Python to convert
        raise JSONInputError(f"{path}: {exc}\n\nfix: {fix}") from None
