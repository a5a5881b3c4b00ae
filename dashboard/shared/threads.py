"""How many cores the dashboard's own PyTorch work may use.

The dashboard shares the machine with the browser showing it (and, on Live, with the video codecs): PyTorch's
spinning thread pool on every core starved them, and Live processed 16 frames/s instead of 21 on 2 cores
(docs/speed.md). Training jobs run in their own processes and keep every core.
"""
import os


def dashboard_threads() -> int:
    """$FER_DASHBOARD_THREADS, else half the cores (at least one)."""
    return int(os.environ.get("FER_DASHBOARD_THREADS", max(1, (os.cpu_count() or 2) // 2)))


def leave_cores_for_the_browser() -> None:
    import torch
    torch.set_num_threads(dashboard_threads())
