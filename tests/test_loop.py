"""The driver's view of the running loop (streaming/driver/loop.py): on
asyncio its own deadline scope and task group, on trio anyio's; the same
behaviour either way, which is what these tests hold."""

from __future__ import annotations

import contextvars
import math
import sys
from collections.abc import Awaitable, Callable
from typing import Any

import anyio
import pytest

from streaming.driver.loop import LoopCalls, loop_calls

NEVER = anyio.Event  # an event nobody sets: an await only a cancel can end

who: contextvars.ContextVar[str] = contextvars.ContextVar("who", default="nobody")


def calls(anyio_backend: str) -> LoopCalls:
    found = loop_calls()
    native = anyio_backend == "asyncio" and sys.version_info >= (3, 11)
    expected = ("_AsyncioDeadline", "_AsyncioGroup") if native else ("CancelScope", "TaskGroup")
    assert (type(found.deadline(math.inf)).__name__, type(found.group()).__name__) == expected
    return found


async def still_runs() -> None:
    """The task is not left cancelled: an await after the scope completes."""
    with anyio.fail_after(1):
        await anyio.lowlevel.checkpoint()
        await anyio.sleep(0.001)
    if "asyncio" in sys.modules:  # and its count of cancels asked for is back where it was
        import asyncio

        task: Any = asyncio.current_task() if asyncio._get_running_loop() else None
        assert task is None or task.cancelling() == 0  # (Any: 3.10's stubs have no cancelling)


async def waits_for_ever(started: anyio.Event, ended: list[str]) -> None:
    """A child that says it has started, then waits until it is cancelled."""
    try:
        started.set()
        await NEVER().wait()
    finally:
        ended.append("child")


async def group_errors(body: Callable[[], Awaitable[None]]) -> list[BaseException]:
    """What ``body`` raised: an exception group (anyio's, or one like it), unpacked."""
    with pytest.raises(Exception) as raised:  # noqa: PT011 (the group's type is checked below)
        await body()
    assert type(raised.value).__name__ == "ExceptionGroup"
    return list(getattr(raised.value, "exceptions"))  # noqa: B009 (3.10 has no such type)


async def test_a_deadline_cuts_the_await_inside_and_catches_that_cancel(anyio_backend: str) -> None:
    loop = calls(anyio_backend)
    with anyio.fail_after(5):
        with loop.deadline(loop.now() + 0.01) as timer:
            await NEVER().wait()
    assert timer.cancelled_caught
    await still_runs()


async def test_a_deadline_not_reached_changes_nothing(anyio_backend: str) -> None:
    loop = calls(anyio_backend)
    done = anyio.Event()

    async def set_it() -> None:
        done.set()

    async with anyio.create_task_group() as group:
        group.start_soon(set_it)
        with loop.deadline(loop.now() + 60) as timer:
            await done.wait()
        with loop.deadline(math.inf) as forever:
            await anyio.lowlevel.checkpoint()
    assert not timer.cancelled_caught and not forever.cancelled_caught
    await still_runs()


async def test_someone_elses_cancel_passes_through_a_deadline(anyio_backend: str) -> None:
    loop = calls(anyio_backend)
    with anyio.CancelScope() as outer:
        with loop.deadline(loop.now() + 60) as timer:
            outer.cancel()
            await NEVER().wait()
    assert outer.cancelled_caught and not timer.cancelled_caught
    await still_runs()


async def test_a_cancel_at_the_same_moment_as_the_deadline_is_not_swallowed(
        anyio_backend: str) -> None:
    loop = calls(anyio_backend)
    due = loop.now() + 0.01
    with anyio.fail_after(5), anyio.CancelScope(deadline=due) as outer, loop.deadline(due) as timer:
        await NEVER().wait()
    assert outer.cancelled_caught and not timer.cancelled_caught
    await still_runs()


async def test_a_wait_that_ended_as_the_deadline_fell_keeps_its_result(
        anyio_backend: str) -> None:
    """The timer fires after the awaited future completed, before the task
    resumed: the result is not thrown away, and no cancel is left pending."""
    if anyio_backend == "trio":
        pytest.skip("a race between an asyncio timer handle and a done future")
    import asyncio

    loop = calls(anyio_backend)
    running = asyncio.get_running_loop()
    future = running.create_future()
    due = loop.now() + 0.01
    running.call_at(due, future.set_result, "kept")  # the same due, scheduled first: runs first
    with anyio.fail_after(5):
        with loop.deadline(due) as timer:
            result = await future
    assert (result, timer.cancelled_caught) == ("kept", False)
    await still_runs()


async def test_a_failing_child_cancels_the_body_and_leaves_in_an_exception_group(
        anyio_backend: str) -> None:
    loop = calls(anyio_backend)
    body_cancelled = False

    async def fails() -> None:
        raise LookupError("child")

    async def body() -> None:
        nonlocal body_cancelled
        async with loop.group() as group:
            group.start_soon(fails)
            try:
                await NEVER().wait()
            except anyio.get_cancelled_exc_class():
                body_cancelled = True
                raise

    with anyio.move_on_after(5) as limit:
        errors = await group_errors(body)
    assert body_cancelled and not limit.cancel_called  # the child's error cancelled it
    assert [type(e) for e in errors] == [LookupError]


async def test_the_bodys_error_cancels_the_children_and_leaves_in_an_exception_group(
        anyio_backend: str) -> None:
    loop = calls(anyio_backend)
    started, ended = anyio.Event(), list[str]()

    async def body() -> None:
        async with loop.group() as group:
            group.start_soon(waits_for_ever, started, ended)
            await started.wait()
            raise LookupError("body")

    with anyio.move_on_after(5) as limit:
        errors = await group_errors(body)
    assert [type(e) for e in errors] == [LookupError] and ended == ["child"]
    assert not limit.cancel_called  # the body's error ended the child, not the limit


async def test_the_cancel_scope_cancels_the_body_and_every_child(anyio_backend: str) -> None:
    loop = calls(anyio_backend)
    started, ended = anyio.Event(), list[str]()

    with anyio.fail_after(5):
        async with loop.group() as group:
            group.start_soon(waits_for_ever, started, ended)
            await started.wait()
            group.cancel_scope.cancel()
            with anyio.CancelScope(shield=True), anyio.fail_after(5):  # the children end
                while not ended:                                          # while the body runs
                    await anyio.lowlevel.checkpoint()
            await NEVER().wait()
            ended.append("body went on")  # not reached
    assert ended == ["child"]
    await still_runs()


async def test_a_child_started_after_the_cancel_is_cancelled_too(anyio_backend: str) -> None:
    loop = calls(anyio_backend)
    started, ended = anyio.Event(), list[str]()

    with anyio.fail_after(5):
        async with loop.group() as group:
            group.cancel_scope.cancel()
            group.start_soon(waits_for_ever, started, ended)  # then the body ends, no await
    assert ended in ([], ["child"])  # anyio runs it to its first await; asyncio's never starts
    assert started.is_set() is (ended == ["child"])
    await still_runs()


async def test_leaving_the_group_waits_for_its_children(anyio_backend: str) -> None:
    loop = calls(anyio_backend)
    go, finished = anyio.Event(), []

    async def child() -> None:
        await go.wait()
        await anyio.lowlevel.checkpoint()
        finished.append("child")

    with anyio.fail_after(5):
        async with loop.group() as group:
            group.start_soon(child)
            go.set()
        assert finished == ["child"]


@pytest.mark.parametrize("body_waits", [True, False], ids=["body waits", "body done"])
async def test_a_cancel_from_outside_reaches_the_children_and_goes_on_out(
        anyio_backend: str, body_waits: bool) -> None:
    """Whether the body is still waiting or done while a child runs: the
    child is cancelled in turn, waited for, and the cancel goes on out."""
    loop = calls(anyio_backend)
    started, ended = anyio.Event(), list[str]()

    with anyio.fail_after(5), anyio.CancelScope() as outer:
        async with loop.group() as group:
            group.start_soon(waits_for_ever, started, ended)
            await started.wait()
            outer.cancel()
            if body_waits:
                await NEVER().wait()
        ended.append("after the group")  # not reached: the cancel goes on out
    assert outer.cancelled_caught and ended == ["child"]
    await still_runs()


async def test_children_run_in_a_copy_of_the_starting_context(anyio_backend: str) -> None:
    loop = calls(anyio_backend)
    seen = []

    async def child() -> None:
        seen.append(who.get())
        who.set("child")

    who.set("parent")
    with anyio.fail_after(5):
        async with loop.group() as group:
            group.start_soon(child)
    assert seen == ["parent"] and who.get() == "parent"


async def test_a_deadline_waits_for_a_shield_inside_to_end(anyio_backend: str) -> None:
    """As anyio's scope does: a shielded step (a wrapper's write that must not
    be cut) runs to its end, and the wait after it is cut."""
    loop = calls(anyio_backend)
    done = []
    with anyio.fail_after(5):
        with loop.deadline(loop.now() + 0.01) as timer:
            with anyio.CancelScope(shield=True):
                await anyio.sleep(0.05)  # the shielded work, past the deadline
                done.append("shielded step")
            await NEVER().wait()
    assert timer.cancelled_caught and done == ["shielded step"]
    await still_runs()


async def test_a_child_in_a_shield_is_cancelled_once_it_leaves_it(anyio_backend: str) -> None:
    loop = calls(anyio_backend)
    inside, release, steps = anyio.Event(), anyio.Event(), []

    async def child() -> None:
        with anyio.CancelScope(shield=True):
            inside.set()
            await release.wait()
            steps.append("shield kept")
        try:
            await NEVER().wait()
        finally:
            steps.append("cancelled after")

    with anyio.fail_after(5):
        async with loop.group() as group:
            group.start_soon(child)
            await inside.wait()
            group.cancel_scope.cancel()
            with anyio.CancelScope(shield=True):
                await anyio.lowlevel.checkpoint()  # a turn with the cancel pending
                release.set()
    assert steps == ["shield kept", "cancelled after"]


async def test_a_native_cancel_at_the_moment_of_the_deadline_is_not_swallowed(
        anyio_backend: str) -> None:
    """Someone else's ``task.cancel()`` (the server's, an ``asyncio.timeout``)
    in the same turn as the deadline goes on out."""
    if anyio_backend == "trio":
        pytest.skip("a native asyncio cancel")
    import asyncio

    loop = calls(anyio_backend)
    task: Any = asyncio.current_task()
    due = loop.now() + 0.01
    caught = None
    with anyio.fail_after(5):
        try:
            with loop.deadline(due) as timer:
                asyncio.get_running_loop().call_at(due, task.cancel)  # after ours, same turn
                await NEVER().wait()
        except asyncio.CancelledError:
            caught = task.uncancel()  # ours undone already: this one is the other's
    assert caught == 0 and not timer.cancelled_caught
    await still_runs()


def test_without_anyios_task_state_the_driver_uses_anyios_own(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Seeing a shield takes anyio's private per-task state; an anyio release
    that changed it must not make a cancel that pierces shields."""
    import streaming.driver.loop as module

    monkeypatch.setattr(module, "anyio_scope", None)

    async def probe() -> tuple[str, str]:
        found = module.loop_calls()
        return type(found.deadline(1.0)).__name__, type(found.group()).__name__

    assert anyio.run(probe, backend="asyncio") == ("CancelScope", "TaskGroup")
