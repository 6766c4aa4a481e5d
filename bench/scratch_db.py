"""What the benchmarks that start an embedded PostgreSQL in a temporary folder
of their own share: the load line they print, and the clean-up."""
from __future__ import annotations

import os
import shutil
from pathlib import Path


def load_average() -> str:
    """The 1, 5 and 15 minute load averages, as the benchmarks print them."""
    return ", ".join(f"{x:.1f}" for x in os.getloadavg())


def discard(handle: object | None, work: Path) -> None:
    """Stops the embedded server (if it was started) and removes its folder."""
    from inventory.db import embedded

    if handle is not None:
        embedded.stop(handle)
    shutil.rmtree(work, ignore_errors=True)
