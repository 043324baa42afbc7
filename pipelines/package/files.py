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
