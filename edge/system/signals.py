"""SIGINT/SIGTERM handling shared by the long-running commands (`edge run`, `edge sync`)."""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable
from types import FrameType


def stop_on_signals(
    on_signal: Callable[[str], None], *, second_signal_interrupts: bool = False
) -> Callable[[], None]:
    """Call ``on_signal(name)`` on SIGINT or SIGTERM; returns a function restoring the old handlers.

    With ``second_signal_interrupts`` a repeated signal falls back to the default behaviour, so
    an impatient operator can cut short whatever the shutdown is waiting for. Signal handlers can
    only be installed from the main thread; elsewhere (tests driving a runner in a thread) this
    installs nothing."""
    if threading.current_thread() is not threading.main_thread():
        return lambda: None
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}

    def handler(signum: int, frame: FrameType | None) -> None:
        on_signal(signal.Signals(signum).name)
        if second_signal_interrupts:
            signal.signal(
                signum, signal.default_int_handler if signum == signal.SIGINT else signal.SIG_DFL
            )

    for sig in previous:
        signal.signal(sig, handler)

    def restore() -> None:
        for sig, old in previous.items():
            signal.signal(sig, old)

    return restore
