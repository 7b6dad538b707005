"""Joining a Ray cluster: what a user sees when a join fails, and a Ray Client join that the head
fails to serve once."""

from __future__ import annotations

import pytest
import ray

from orchestrator.config import ExecutionConfig
from orchestrator.errors import UsageError
from orchestrator.executors import ray_runtime

CLIENT_SERVER_FAILED = ("Initialization failure from server:\nTraceback (most recent call last):\n  ...\n"
                        "RuntimeError: Starting Ray client server failed. See ray_client_server_23000.err for "
                        "detailed logs.\n")


@pytest.fixture
def joins(monkeypatch):
    """ray.init replaced by one that raises each of the given errors in turn, then connects; the
    addresses it was called with."""
    calls: list[str] = []

    def install(*errors: Exception) -> list[str]:
        queue = list(errors)

        def init(**kwargs):
            calls.append(kwargs["address"])
            if queue:
                raise queue.pop(0)

        monkeypatch.setattr(ray, "is_initialized", lambda: False)  # the suite's own Ray is not this join
        monkeypatch.setattr(ray, "init", init)
        monkeypatch.setattr(ray_runtime, "_CLIENT_RETRY_WAITS", (0.0, 0.0))
        return calls

    return install


def test_a_ray_client_join_the_head_failed_to_serve_once_is_tried_again(joins):
    calls = joins(ConnectionAbortedError(CLIENT_SERVER_FAILED))
    assert ray_runtime.connect(ExecutionConfig(address="ray://10.0.0.1:10001")) is True
    assert calls == ["ray://10.0.0.1:10001"] * 2


def test_a_ray_client_join_that_keeps_failing_ends_in_one_line_naming_the_address(joins):
    calls = joins(*[ConnectionAbortedError(CLIENT_SERVER_FAILED)] * 3)
    with pytest.raises(UsageError, match=r"^execution.address 'ray://10.0.0.1:10001': cannot join") as caught:
        ray_runtime.connect(ExecutionConfig(address="ray://10.0.0.1:10001"))
    said = str(caught.value)
    assert len(calls) == 3 and "\n" not in said
    assert "token" not in said  # the head failed to start a server: no hint about authentication
    assert "(RuntimeError: Starting Ray client server failed. See ray_client_server_23000.err" in said


def test_a_ray_client_join_refused_without_a_token_says_what_to_set(joins, monkeypatch):
    monkeypatch.delenv("RAY_AUTH_MODE", raising=False)
    joins(ConnectionError("ray client connection timeout"))
    with pytest.raises(UsageError, match="needs RAY_AUTH_MODE=token"):
        ray_runtime.connect(ExecutionConfig(address="ray://10.0.0.1:10001"))


def test_other_join_failures_are_not_tried_again(joins):
    calls = joins(ConnectionError("Could not find any running Ray instance"))
    with pytest.raises(UsageError, match=r"^execution.address 'auto': cannot join .*running Ray instance"):
        ray_runtime.connect(ExecutionConfig(address="auto"))
    assert calls == ["auto"]


def test_a_cluster_that_wants_a_token_says_where_it_goes_in_one_line(joins):
    joins(ray.exceptions.AuthenticationError("Authentication required: no token found\nmore detail"))
    with pytest.raises(UsageError) as caught:
        ray_runtime.connect(ExecutionConfig(address="auto"))
    said = str(caught.value)
    assert "\n" not in said and said.startswith("execution.address 'auto': ")
    assert "RAY_AUTH_TOKEN" in said
