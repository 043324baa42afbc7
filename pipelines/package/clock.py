"""Dates and times the tools agree on: one as-of rule and one build-time rule.

- The as-of date (what "in the future" and "stale" are measured against) is today's date in UTC
  unless a command is given --as-of. A release that must be reproducible passes it explicitly
  (release.yml passes the tag commit's date).
- The build time written into a release is SOURCE_DATE_EPOCH when set, else the commit time of a
  clean checkout, else the current time (a tree with uncommitted changes, or no git at all).
"""

from __future__ import annotations

import os
from datetime import UTC, date, datetime


def utc_today() -> date:
    """Today's date in UTC: the default as-of date of validate, build and stale."""
    return datetime.now(UTC).date()


def source_date_epoch() -> datetime | None:
    """SOURCE_DATE_EPOCH as a UTC time, or None when it is unset or not a whole number of seconds."""
    raw = os.environ.get("SOURCE_DATE_EPOCH", "").strip()
    return datetime.fromtimestamp(int(raw), UTC) if raw.isdigit() else None
