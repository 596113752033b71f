"""Every async test runs on asyncio and on trio, through the anyio pytest plugin.

trio is imported here on purpose: a machine without it fails the whole suite
instead of silently running half of it.
"""

from __future__ import annotations

import inspect

import pytest
import trio  # noqa: F401  (a missing trio must be a failure, not a skip)

from tests.redis_server import (  # noqa: F401  (fixtures: a real redis-server per test or session)
    persistent_redis_server,
    redis_server,
    shared_redis_server,
)


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.hookimpl(tryfirst=True)
def pytest_pycollect_makeitem(collector: pytest.Collector, name: str, obj: object) -> None:
    # Mark every coroutine test for anyio before the anyio plugin looks, so no
    # async test can forget the marker and silently not run.
    if name.startswith("test") and inspect.iscoroutinefunction(obj):
        pytest.mark.anyio(obj)
