"""The one place a DuckDB connection is opened (validate, build, diff, query, stale, verify).

Every connection is locked before it touches anything from the package: extensions are neither
installed nor loaded automatically, file access is limited to the paths and directories the caller
names (DuckDB's allowed_paths / allowed_directories, then enable_external_access = false), spills go
to a private temporary directory outside the package and the release, and lock_configuration = true
so no SQL can undo any of it.
"""

from __future__ import annotations

import atexit
import shutil
import tempfile
from collections.abc import Iterable
from pathlib import Path

_SPILL_DIRS: list[str] = []


def remove_spill_directories() -> None:
    """Remove the private temporary directories this process made (also run at exit)."""
    for d in _SPILL_DIRS:
        shutil.rmtree(d, ignore_errors=True)


atexit.register(remove_spill_directories)


def _lit(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _dir_prefix(path: Path) -> str:
    text = str(Path(path).resolve())
    return text if text.endswith("/") else text + "/"


def spill_directory() -> Path:
    """A fresh private directory in the system temporary area (removed at exit)."""
    d = tempfile.mkdtemp(prefix="model-atlas-duckdb-")
    _SPILL_DIRS.append(d)
    return Path(d)


def open_duckdb(
    database: Path | str | None = None,
    *,
    read_only: bool = False,
    files: Iterable[Path] = (),
    directories: Iterable[Path] = (),
    memory_limit: str | None = None,
    threads: int | None = None,
):
    """A locked DuckDB connection.

    files: the only files it may read besides its own database; directories: the only directories it
    may read and write (a release being written, a snapshot being read). Nothing else on disk is
    reachable from SQL, extensions are neither installed nor loaded automatically, and no SQL can
    change any of this (lock_configuration).
    """
    import duckdb

    config = {
        "autoinstall_known_extensions": False,
        "autoload_known_extensions": False,
        "allow_community_extensions": False,
    }
    con = duckdb.connect(str(database) if database else ":memory:", read_only=read_only, config=config)
    try:
        con.execute("SET enable_progress_bar = false")
        spill = spill_directory()
        con.execute(f"SET temp_directory = {_lit(str(spill))}")
        if memory_limit:
            con.execute(f"SET memory_limit = {_lit(memory_limit)}")
        if threads:
            con.execute(f"SET threads = {int(threads)}")
        paths = sorted({str(Path(p).resolve()) for p in files})
        dirs = sorted({_dir_prefix(d) for d in directories} | {_dir_prefix(spill)})
        if paths:
            con.execute(f"SET allowed_paths = [{', '.join(_lit(p) for p in paths)}]")
        con.execute(f"SET allowed_directories = [{', '.join(_lit(d) for d in dirs)}]")
        con.execute("SET enable_external_access = false")
        con.execute("SET allow_extension_repositories = 'forbidden'")
        con.execute("SET lock_configuration = true")
    except BaseException:
        con.close()
        raise
    return con


def locked(con) -> bool:
    """Whether a connection is locked as open_duckdb leaves it (the tests assert this of every tool)."""
    settings = dict(
        con.execute(
            "SELECT name, value FROM duckdb_settings() WHERE name IN ('enable_external_access', 'lock_configuration', 'autoload_known_extensions', 'autoinstall_known_extensions')"
        ).fetchall()
    )
    return settings == {
        "enable_external_access": "false",
        "lock_configuration": "true",
        "autoload_known_extensions": "false",
        "autoinstall_known_extensions": "false",
    }
