"""XDG locations (the definitions live in core.paths)."""

from core.paths import cache_dir, history_db, sandbox_kubeconfig, state_dir

__all__ = ["cache_dir", "history_db", "sandbox_kubeconfig", "state_dir"]
