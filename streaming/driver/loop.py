"""What the running event loop is, where the driver needs more than anyio.

The package speaks anyio only, so that it runs on trio as on asyncio; this is
the one module that looks at asyncio itself, lazily, for what anyio does not
offer at the driver's cost:

- whether a send begun in one task may end in another (offers, ``offers.py``:
  asyncio's futures name no task, trio's waits do);
- the loop's clock without anyio's lookup of the running backend on every read
  (``anyio.current_time()`` finds the backend first: about 25 times the cost of
  the read itself, paid a few times per response), and a checkpoint likewise
  (``anyio.lowlevel.checkpoint()`` is ``asyncio.sleep(0)`` there, after the
  same lookup);
- a deadline on one await (the listener's timed ``receive()``, a keep-alive's
  send), which every idle stream holds for as long as it waits. anyio's
  ``CancelScope(deadline=...)`` is a general scope (children, shielding, a
  cancel retried every turn of the loop); a timer handle and a task cancel do
  the same for one await in less memory, and in about a third of the CPU when
  it fires (``_AsyncioDeadline``);
- the response's task group: its children (the disconnect listener, a batch's
  hand-off) as bare asyncio tasks. anyio's task group wraps each child in a
  coroutine of its own and keeps per-task state in a weak dictionary: about
  2.5 KiB of every idle stream's 20 (``_AsyncioGroup``). The body stays in an
  anyio cancel scope, so ``stop()`` cancels it exactly as before.

A native cancel does not see anyio's shields, and a send or receive wrapper
may hold one (``anyio.to_thread.run_sync`` does while its thread runs): cut
there, a wrapper could lose a message it had already taken. So neither cancels
a task that is inside a shielded anyio scope entered since: it tries again on
the next turn, as anyio's own delivery does. Seeing the shield takes anyio's
private per-task state (``anyio_scope``); where that is not as expected (an
anyio release that changed it), anyio's own deadline and group are used.

On trio, and on asyncio before Python 3.11 (no ``Task.uncancel()``, so a
cancel cannot be told apart from another), anyio's own are used.
"""

from __future__ import annotations

import builtins
import functools
import math
from collections.abc import Awaitable, Callable, Coroutine
from types import TracebackType
from typing import Any, NamedTuple, Protocol

import anyio
import anyio.abc
import anyio.lowlevel

__all__ = ["Deadline", "Group", "LoopCalls", "asyncio_loop", "loop_calls"]


class Deadline(Protocol):
    """What the driver uses of ``anyio.CancelScope(deadline=...)``."""

    @property
    def cancelled_caught(self) -> bool: ...

    def __enter__(self) -> Any: ...

    def __exit__(self, *exc_info: Any) -> bool | None: ...


class Group(Protocol):
    """What the driver uses of an anyio task group."""

    @property
    def cancel_scope(self) -> Any: ...

    def start_soon(self, func: Callable[..., Coroutine[Any, Any, Any]], *args: Any,
                   name: object = None) -> object: ...

    async def __aenter__(self) -> Any: ...

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> bool: ...


class LoopCalls(NamedTuple):
    """The running loop's clock, checkpoint, deadline scope and task group."""

    now: Callable[[], float]
    checkpoint: Callable[[], Awaitable[None]]
    deadline: Callable[[float], Deadline]
    group: Callable[[], Group]


def asyncio_loop() -> Any:
    """The running asyncio event loop, or ``None`` (trio, or no loop)."""
    import asyncio  # here, not at the top: only an asyncio program has it loaded anyway

    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


def loop_calls() -> LoopCalls:
    """The running loop's clock, checkpoint and deadline, found once: what
    ``anyio.current_time`` returns (the clock cancel-scope deadlines use),
    what ``anyio.lowlevel.checkpoint`` awaits, and a scope that cancels the
    await inside it at a deadline on that clock."""
    loop = asyncio_loop()
    if loop is None:
        return LoopCalls(anyio.current_time, anyio.lowlevel.checkpoint, _anyio_deadline,
                         anyio.create_task_group)  # fmt: skip
    if not _has_uncancel() or anyio_scope is None:  # 3.10: a cancel could not be told apart
        return LoopCalls(loop.time, _asyncio_checkpoint, _anyio_deadline, anyio.create_task_group)
    return LoopCalls(loop.time, _asyncio_checkpoint, functools.partial(_AsyncioDeadline, loop),
                     functools.partial(_AsyncioGroup, loop))  # fmt: skip


def _anyio_deadline(due: float) -> Deadline:
    return anyio.CancelScope(deadline=due)


def _asyncio_checkpoint() -> Awaitable[None]:
    import asyncio  # loaded already: the running loop is asyncio's

    return asyncio.sleep(0)  # what anyio's checkpoint awaits on asyncio


def _has_uncancel() -> bool:
    import asyncio

    return hasattr(asyncio.Task, "uncancel")


def _find_anyio_scope() -> Callable[[Any], Any] | None:
    """``task -> its innermost anyio cancel scope`` (or ``None``), read from
    anyio's asyncio backend; ``None`` if that backend does not look as this
    module expects (the attributes ``shielded`` below reads included)."""
    try:
        from anyio._backends._asyncio import CancelScope, TaskState, _task_states
    except ImportError:
        return None
    scope = CancelScope(shield=True)
    if not (hasattr(scope, "_shield") and hasattr(scope, "_parent_scope")
            and "cancel_scope" in getattr(TaskState, "__slots__", ())):
        return None

    def anyio_scope(task: Any) -> Any:
        state = _task_states.get(task)
        return None if state is None else state.cancel_scope

    return anyio_scope


anyio_scope = _find_anyio_scope()


def shielded(task: Any, outer: Any) -> bool:
    """Whether ``task`` is inside a shielded anyio scope entered after
    ``outer`` (its innermost scope at some earlier moment; ``None``: any)."""
    assert anyio_scope is not None  # only called where loop_calls found it
    scope = anyio_scope(task)
    while scope is not None and scope is not outer:
        if scope._shield:
            return True
        scope = scope._parent_scope
    return False


class _AsyncioDeadline:
    """Cancel the task inside at ``due``, and catch that cancellation (and only
    that one) on the way out: ``asyncio.timeout_at`` without its exception, as
    a plain context manager, and safe against the race it has on Python 3.11
    and 3.12. That race: the timer fires after the awaited future completed but
    before the task resumed; a cancel then would throw away the result (and, on
    3.11, ``uncancel()`` leaves the cancel pending for the task's next await).
    So, as anyio does, a task whose wait is already over is not cancelled: the
    timer tries again on the next turn, by which time the task has either left
    the scope (``__exit__`` drops the retry) or waits again.

    Someone else's cancel (anyio's scope, the server's) is told apart by
    ``Task.cancelling()``: the count it had on entry is restored, and a higher
    count propagates the cancellation, as ``asyncio.timeout`` does."""

    __slots__ = ("_cancels", "_due", "_fired", "_handle", "_loop", "_outer", "_task",
                 "cancelled_caught")

    def __init__(self, loop: Any, due: float) -> None:
        self._loop = loop
        self._due = due
        self._handle: Any = None
        self._task: Any = None  # the asyncio task (Any: 3.10's stubs have no uncancel)
        self._fired = self.cancelled_caught = False

    def __enter__(self) -> _AsyncioDeadline:
        import asyncio

        self._task = asyncio.current_task(self._loop)
        assert self._task is not None, "a deadline needs a task"
        self._cancels = self._task.cancelling()
        self._outer = anyio_scope(self._task) if anyio_scope is not None else None
        if self._due != math.inf:  # uvloop cannot schedule at infinity
            self._handle = self._loop.call_at(self._due, self._fire)
        return self

    def _fire(self) -> None:
        waiter = self._task._fut_waiter  # what anyio's cancel delivery looks at too
        # About to resume (not a wait to cut), or shielded: try again next turn.
        if (waiter is not None and waiter.done()) or shielded(self._task, self._outer):
            self._handle = self._loop.call_soon(self._fire)
            return
        self._fired = True
        self._task.cancel()

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> bool:
        import asyncio

        if self._handle is not None:
            self._handle.cancel()
        if not self._fired:
            return False
        ours = self._task.uncancel() <= self._cancels
        if ours and exc_type is asyncio.CancelledError:
            self.cancelled_caught = True
            return True
        return False


class _AsyncioGroup:
    """anyio's task group as the driver uses it, with bare asyncio tasks for
    children: ``start_soon`` creates a task (in a copy of the current context,
    as anyio does); a child that fails cancels the body and the other
    children, and its error (or the body's) leaves the group in an
    ``ExceptionGroup``; leaving
    the group waits for every child, cancelling them if the body was
    cancelled or raised; ``cancel_scope.cancel()`` cancels the body (an anyio
    scope: every await in it, until it is left) and each child (once: a child
    here is the driver's own code, which does not ignore a cancel), and any
    child started after it, as a child started in a cancelled anyio scope is."""

    __slots__ = ("_all_done", "_body", "_errors", "_loop", "_tasks")

    def __init__(self, loop: Any) -> None:
        self._loop = loop
        self._body = anyio.CancelScope()
        self._tasks: set[Any] = set()
        self._errors: list[BaseException] = []
        self._all_done: Any = None

    @property
    def cancel_scope(self) -> _AsyncioGroup:
        return self  # cancel() is the group's own: the body and the children

    def cancel(self) -> None:
        self._body.cancel()
        self._cancel_children()

    def _cancel_children(self) -> None:
        # Once each (a child here is the driver's own code, which does not
        # ignore a cancel), but not inside a shield: those are tried again.
        shielded_ones = [task for task in self._tasks if shielded(task, None)]
        for task in self._tasks:
            if task not in shielded_ones:
                task.cancel()
        if shielded_ones:
            self._loop.call_soon(self._cancel_shielded, shielded_ones)

    def _cancel_shielded(self, tasks: list[Any]) -> None:
        waiting = [task for task in tasks if not task.done() and shielded(task, None)]
        for task in tasks:
            if not task.done() and task not in waiting:
                task.cancel()
        if waiting:
            self._loop.call_soon(self._cancel_shielded, waiting)

    def start_soon(self, func: Callable[..., Coroutine[Any, Any, Any]], *args: Any,
                   name: object = None) -> None:
        task = self._loop.create_task(func(*args))
        self._tasks.add(task)
        task.add_done_callback(self._child_done)
        if self._body.cancel_called:  # a new task holds no shield: cancelled before its first step
            task.cancel()

    def _child_done(self, task: Any) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            self._errors.append(task.exception())
            self.cancel()
        if not self._tasks and self._all_done is not None and not self._all_done.done():
            self._all_done.set_result(None)

    async def __aenter__(self) -> _AsyncioGroup:
        self._body.__enter__()
        return self

    async def __aexit__(self, exc_type: Any, exc: Any, tb: Any) -> bool:
        # The body's scope is left first, so that waiting for the children
        # below is not cancelled again on every turn while they finish.
        import asyncio

        swallowed = bool(self._body.__exit__(exc_type, exc, tb))
        if exc_type is not None:
            self._cancel_children()
            if not issubclass(exc_type, asyncio.CancelledError):
                self._errors.insert(0, exc)  # the body's own error: in the group, as anyio's
        cancelled = await self._wait_for_children()
        if self._errors:  # as anyio's group raises them (a builtin from 3.11, where this runs)
            group_error = getattr(builtins, "BaseExceptionGroup")  # noqa: B009 (3.10 has none)
            raise group_error("unhandled errors in a response's task group",
                              self._errors) from None  # the body's is in it: not twice
        if cancelled is not None and (exc_type is None or swallowed):
            raise cancelled  # cancelled from outside while the children finished
        return swallowed

    async def _wait_for_children(self) -> BaseException | None:
        import asyncio

        cancelled: BaseException | None = None
        while self._tasks:
            self._all_done = self._loop.create_future()
            try:
                await self._all_done
            except asyncio.CancelledError as exc:  # pass it on, and wait for them still
                cancelled = exc
                self._cancel_children()
        return cancelled
