"""Helpers for the hub's tests: an ASGI app around a hub, and a reader that
parses a subscription's events as they arrive (in process, or over httpx)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from streaming import EventSourceResponse, ServerSentEvent, SSEParser
from streaming._types import ASGIApp, Receive, Scope, Send
from streaming.hub import Hub
from streaming.testing import TestResponse


def subscriber_app(hub: Hub, **options: Any) -> ASGIApp:
    """``GET /<topic>[,<topic>...]`` subscribes to those topics."""

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        topics = scope["path"].strip("/").split(",")
        response = EventSourceResponse(hub.subscriber(topics), **options)
        await response(scope, receive, send)

    return app


class Reader:
    """Events (and the last event id) of one in-process subscription."""

    def __init__(self, response: TestResponse) -> None:
        self.response = response
        self.parser = SSEParser(include_comments=True)
        self.events: list[ServerSentEvent] = []
        self.comments: list[str] = []

    @property
    def last_event_id(self) -> str:
        return self.parser.last_event_id

    async def started(self) -> Reader:
        """Wait for the first chunk: the subscription is registered."""
        await self._feed_next()
        return self

    async def read(self, count: int) -> list[ServerSentEvent]:
        """Wait for ``count`` more events (not counting comments)."""
        target = len(self.events) + count
        while len(self.events) < target:
            if not await self._feed_next():
                break
        return self.events[target - count:]

    async def read_until(self, done: Callable[[ServerSentEvent], bool]) -> list[ServerSentEvent]:
        start = len(self.events)
        while not any(done(event) for event in self.events[start:]):
            if not await self._feed_next():
                break
        return self.events[start:]

    async def _feed_next(self) -> bool:
        chunk = await self.response.next_chunk()
        if chunk is None:
            return False
        for item in self.parser.feed(chunk):
            if item.comment is not None:
                self.comments.append(item.comment)
            else:
                self.events.append(item)
        return True


def data_of(events: list[ServerSentEvent]) -> list[str]:
    return [event.data for event in events]


def ids_of(events: list[ServerSentEvent]) -> list[str | None]:
    return [event.id for event in events]
