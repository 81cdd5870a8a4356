"""XDG locations of driftdeck's own files."""

from __future__ import annotations

import os
from pathlib import Path


def state_dir() -> Path:
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "driftdeck"


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "driftdeck"


def sandbox_kubeconfig() -> Path:
    """Where `driftdeck sandbox serve` writes its kubeconfig unless told otherwise."""
    return state_dir() / "sandbox" / "kubeconfig"


def history_db() -> Path:
    return state_dir() / "history.db"
