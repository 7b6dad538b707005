"""Ctrl-C and SIGTERM during a search.

Both end a search the same way: a ``KeyboardInterrupt`` that cancels the running trials, after
which what finished and the report are written and the run can be resumed. A signal may arrive at
any bytecode, though, and one that lands inside a write to the study's storage (Optuna's journal
file lock, a database transaction) or to ``trials.jsonl`` would leave it half done. The driver
runs those writes under :func:`deferred`: a signal that arrives there is held and raised as soon
as the write is complete. Everywhere else (a trial training in the driver's process, a wait on
Ray) it interrupts at once, as before. A second signal while one is held raises at once: a
write that hangs (an unreachable database) can always be left with a second Ctrl-C.

Only the main thread handles signals, so only a search driven from it (where :func:`stoppable`
installed the handlers) holds them; elsewhere :func:`deferred` does nothing.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from typing import Any, Iterator

_installed = False
_depth = 0
_pending: str | None = None


def _handler(signum: int, frame: Any) -> None:
    global _pending
    name = signal.Signals(signum).name
    if _depth and _pending is None:
        _pending = name
        return
    raise KeyboardInterrupt(name)


@contextlib.contextmanager
def stoppable() -> Iterator[None]:
    """Install the handlers for SIGINT and SIGTERM for the duration of a search.

    SIGTERM (a scheduler's or ``timeout``'s stop) then ends a search as Ctrl-C does. Installed after
    Ray connects, since ``ray.init`` installs a SIGTERM handler that aborts the process. Outside the
    main thread signals cannot be handled, and nothing is installed.
    """
    global _installed, _pending
    if threading.current_thread() is not threading.main_thread() or _installed:
        yield
        return
    previous = {sig: signal.signal(sig, _handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    _installed, _pending = True, None
    try:
        yield
    finally:
        _installed = False
        for sig, handler in previous.items():
            signal.signal(sig, handler)


@contextlib.contextmanager
def deferred() -> Iterator[None]:
    """Hold Ctrl-C and SIGTERM until the block is done, then raise the held one (if any). A block
    that raises keeps its own exception: the held signal is dropped, the run stops on the error."""
    global _depth, _pending
    if not _installed or threading.current_thread() is not threading.main_thread():
        yield
        return
    _depth += 1
    try:
        yield
    except BaseException:
        _depth -= 1
        if not _depth:
            _pending = None
        raise
    _depth -= 1
    if not _depth and _pending:
        name, _pending = _pending, None
        raise KeyboardInterrupt(name)
