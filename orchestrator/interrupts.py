"""Ctrl-C and SIGTERM during a search.

Both end a search the same way: a ``KeyboardInterrupt`` that cancels the running trials, after
which what finished and the report are written and the run can be resumed. A signal may arrive at
any bytecode, though, and one that lands inside a write to the study's storage (Optuna's journal
file lock, a database transaction) or to ``trials.jsonl`` would leave it half done. The driver
runs those writes under :func:`deferred`: a signal that arrives there is held and raised as soon
as the write is complete. Everywhere else (a trial training in the driver's process, a wait on
Ray) it interrupts at once, as before.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from typing import Any, Iterator

_depth = 0
_pending: str | None = None


def _handler(signum: int, frame: Any) -> None:
    global _pending
    name = signal.Signals(signum).name
    if _depth:
        _pending = _pending or name
        return
    raise KeyboardInterrupt(name)


@contextlib.contextmanager
def stoppable() -> Iterator[None]:
    """Install the handlers for SIGINT and SIGTERM for the duration of a search.

    SIGTERM (a scheduler's or ``timeout``'s stop) then ends a search as Ctrl-C does. Installed after
    Ray connects, since ``ray.init`` installs a SIGTERM handler that aborts the process. Outside the
    main thread signals cannot be handled, and nothing is installed.
    """
    global _pending
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {sig: signal.signal(sig, _handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    _pending = None
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


@contextlib.contextmanager
def deferred() -> Iterator[None]:
    """Hold Ctrl-C and SIGTERM until the block is done, then raise the held one (if any)."""
    global _depth, _pending
    _depth += 1
    try:
        yield
    finally:
        _depth -= 1
        if not _depth and _pending:
            name, _pending = _pending, None
            raise KeyboardInterrupt(name)
