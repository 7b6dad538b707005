"""Starting, joining and leaving Ray.

Unset ``execution.address``: the run starts a private local Ray (``address="local"``, no
dashboard, usage stats off) and stops it at the end. ``auto`` or ``ray://host:port``: the run
joins that cluster and leaves it running. When the calling process is already connected
(a notebook, the test suite), that connection is used as it is.
"""

from __future__ import annotations

import logging
import os
import time
from typing import TYPE_CHECKING, Any

from orchestrator.errors import UsageError

if TYPE_CHECKING:
    from orchestrator.config import ExecutionConfig

#: What Ray Client says when the head could not start the server it starts for each new client, a
#: start that can fail on a busy head and succeed on the next try
_CLIENT_SERVER_FAILED = ("Starting Ray client server failed", "Proxy failed to Connect to backend")
#: Seconds to wait before each further try to join through Ray Client
_CLIENT_RETRY_WAITS = (2.0, 5.0)

#: Ray loggers whose start-up chatter says nothing a user of the orchestrator can act on
_QUIET_LOGGERS = ("ray", "ray._private.authentication.authentication_token_setup")


def connect(execution: "ExecutionConfig") -> bool:
    """Make sure this process is connected to Ray; True when this call started it (and owns it)."""
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    import ray

    if ray.is_initialized():
        return False
    for name in _QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.ERROR)
    kwargs: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False, "logging_level": logging.ERROR,
                              "runtime_env": execution.runtime_env}
    address = execution.address
    if address is None:
        kwargs["address"] = "local"
    else:
        kwargs["address"] = address
        kwargs.pop("include_dashboard")  # the cluster's own setting
    try:
        _init(ray, kwargs)
    except ray.exceptions.AuthenticationError as exc:  # RAY_AUTH_MODE=token without a token
        raise UsageError(f"execution.address '{address}': {_one_line(exc)} (RAY_AUTH_TOKEN, RAY_AUTH_TOKEN_PATH or "
                         "~/.ray/auth_token must hold the cluster's token)") from None
    except ConnectionError as exc:
        hint = ""
        if (str(address).startswith("ray://") and not _server_failed(exc)  # the head's own trouble: not a token
                and os.environ.get("RAY_AUTH_MODE", "").lower() != "token"):
            hint = ("; a cluster with token authentication (Ray's default) needs RAY_AUTH_MODE=token and its "
                    "token (RAY_AUTH_TOKEN or ~/.ray/auth_token) here")
        raise UsageError(f"execution.address '{address}': cannot join a Ray cluster there ({_one_line(exc)}){hint}"
                         ) from None
    except ValueError as exc:
        raise UsageError(f"execution.address '{address}': {exc}") from None
    return True


def _init(ray: Any, kwargs: dict[str, Any]) -> None:
    """``ray.init``, tried again when a Ray Client head failed to start this client's server."""
    waits = list(_CLIENT_RETRY_WAITS) if str(kwargs["address"]).startswith("ray://") else []
    while True:
        try:
            ray.init(**kwargs)
            return
        except ConnectionError as exc:
            if not waits or not _server_failed(exc):
                raise
            logging.getLogger(__name__).warning("Ray Client: the head could not start a server for this client; "
                                                "trying again in %gs", waits[0])
            time.sleep(waits.pop(0))


def _server_failed(exc: Exception) -> bool:
    return any(text in str(exc) for text in _CLIENT_SERVER_FAILED)


def _one_line(exc: Exception) -> str:
    """The line of a Ray error that says what went wrong: the last one of a server's traceback
    (the error it raised), else the first."""
    lines = [line.strip() for line in str(exc).strip().splitlines() if line.strip()]
    if not lines:
        return type(exc).__name__
    return lines[-1] if any(line.startswith("Traceback") for line in lines) else lines[0]


def current_node() -> str | None:
    """The Ray node this process runs on; None when it is on none (a Ray Client driver)."""
    import ray

    try:
        return ray.get_runtime_context().get_node_id()
    except Exception:
        return None


def disconnect() -> None:
    import ray

    ray.shutdown()


def cluster_summary() -> str:
    import ray

    nodes = [n for n in ray.nodes() if n.get("Alive")]
    cpus = ray.cluster_resources().get("CPU", 0)
    gpus = ray.cluster_resources().get("GPU", 0)
    return f"{len(nodes)} node{'s' * (len(nodes) != 1)}, {cpus:g} CPUs" + (f", {gpus:g} GPUs" if gpus else "")
