"""Progress lines of the benchmarks on stderr, so stdout keeps only their results."""

from __future__ import annotations

import sys
import time


def log(message: str) -> None:
    """One time-stamped progress line on stderr."""
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)
