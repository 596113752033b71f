"""Scenario 3: stream an LLM's answer to a browser, token by token (card 7), and
save the finished transcript afterwards in a background task (card 10).

Routes (``ChatDemo.routes()``, mounted by ``examples.app``):

* ``GET /chat``: the chat page (``examples.chat_page``);
* ``POST /chat/stream``: ``{"prompt": "..."}`` in, Server-Sent Events out
  (``delta``, ``usage``, ``done``; ``error`` if the upstream fails mid-way),
  relayed by ``streaming.integrations.ChatRelay``;
* ``POST /chat/ndjson``: the same as NDJSON lines;
* ``GET /chat/transcripts``: what the background task saved for this reader
  (a random ``chat_reader`` cookie; no one sees another reader's chats);
* ``POST /proxy/v1/chat/completions``: the relay as an OpenAI-compatible proxy
  (point any OpenAI client at ``http://HOST/proxy/v1``), only in front of the
  local model;
* ``/v1/...``: ``LocalOpenAI``, the local model server, the relay's upstream.

The relay reaches the upstream over real HTTP, by default this very server's
``/v1`` (so the demo needs one process and no API key). Set ``OPENAI_BASE_URL``
and ``OPENAI_API_KEY`` (and ``CHAT_MODEL``) to relay a real API instead: the
relay code does not change.

Card 10's contrast: the reader needs every token, so the answer streams; the
transcript is only needed once the answer is whole, so it is saved by
``background=``, which the response runs after the last byte went out, and
never when the reader left (Stop) or the upstream failed.

Every piece of per-request state is bounded (``Transcripts``): a public demo
must not grow with the number of requests it has served.
"""

from __future__ import annotations

import dataclasses
import os
import re
import secrets
import threading
from collections import Counter, deque
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import BaseRoute, Mount, Route

from examples.chat_page import chat_page
from streaming import EndReason, Outcome, RequestBodyError, StreamingResponse, read_json
from streaming.integrations import ChatRelay, RelayMode, RelayResult
from streaming.testing import LocalOpenAI

#: Longest prompt the page may send: the relay forwards it to a paid API.
MAX_PROMPT = 4000
#: Longest answer a transcript keeps (a real upstream's answer has no bound).
MAX_ANSWER = 8000
#: The cookie naming a reader: random, so no one can guess another's.
READER_COOKIE = "chat_reader"
_READER_ID = re.compile(r"[A-Za-z0-9_-]{22}")
#: Largest request bodies read (413 beyond): a prompt, escaped; a proxied chat.
MAX_PROMPT_BODY = 64 * 1024
MAX_PROXY_BODY = 256 * 1024
LOCAL_MODEL = "local-echo"

#: Our responses are Starlette responses at run time, but not to the type checker.
Answer = Response | StreamingResponse


@dataclass(frozen=True, slots=True)
class Transcript:
    prompt: str
    answer: str
    finish_reason: str | None
    usage: Mapping[str, Any] | None


class Transcripts:
    """Saved transcripts, each kept for the reader who chatted, and a count of
    the chats not saved. Bounded, whatever the traffic: the newest ``keep``
    transcripts in all, at most ``per_reader`` of one reader's, each answer cut
    at ``MAX_ANSWER`` characters; an aborted chat is only counted, its prompt
    is not kept. Thread-safe: the server thread writes, a test thread waits."""

    def __init__(self, *, keep: int = 500, per_reader: int = 20) -> None:
        self.per_reader = per_reader
        self._saved: deque[tuple[str, Transcript]] = deque(maxlen=keep)
        self.saved_count = 0
        self.discarded: Counter[EndReason] = Counter()
        self._changed = threading.Condition()

    def save(self, reader: str, transcript: Transcript) -> None:
        transcript = dataclasses.replace(transcript, answer=transcript.answer[:MAX_ANSWER])
        with self._changed:
            mine = [i for i, (owner, _) in enumerate(self._saved) if owner == reader]
            if len(mine) >= self.per_reader:
                del self._saved[mine[0]]
            self._saved.append((reader, transcript))
            self.saved_count += 1
            self._changed.notify_all()

    def discard(self, reason: EndReason) -> None:
        with self._changed:
            self.discarded[reason] += 1
            self._changed.notify_all()

    def of(self, reader: str | None) -> list[Transcript]:
        """The transcripts saved for ``reader``, oldest first."""
        with self._changed:
            return [t for owner, t in self._saved if reader is not None and owner == reader]

    def __len__(self) -> int:
        with self._changed:
            return len(self._saved)

    def wait_for_count(self, saved: int, discarded: int, timeout: float) -> None:
        """Block until at least that many were saved and discarded, ever."""
        with self._changed:
            if not self._changed.wait_for(
                    lambda: self.saved_count >= saved
                    and sum(self.discarded.values()) >= discarded, timeout):
                raise TimeoutError(f"not {saved} saved and {discarded} discarded "
                                   f"within {timeout} s")


class ChatDemo:
    """The chat demo's state: the local model server, one relay per upstream
    URL (built on first use, in the serving event loop), the transcripts.

    ``upstream_url`` ``None`` means this server's own ``/v1``. ``scale``
    multiplies the local server's prefill (0.4 s) and per-token (60 ms) delays.
    """

    def __init__(self, *, scale: float = 1.0, upstream_url: str | None = None,
                 api_key: str | None = None, model: str | None = None) -> None:
        self.local = LocalOpenAI(model=LOCAL_MODEL, prefill_delay=0.4 * scale,
                                 token_delay=0.06 * scale)
        self.upstream_url = upstream_url
        self.api_key = api_key
        self.model = model or (LOCAL_MODEL if upstream_url is None else "gpt-4o-mini")
        self.transcripts = Transcripts()
        self._relays: dict[str, ChatRelay] = {}

    @classmethod
    def from_env(cls, *, scale: float = 1.0) -> ChatDemo:
        """The local upstream, unless ``OPENAI_BASE_URL`` names another."""
        return cls(scale=scale, upstream_url=os.environ.get("OPENAI_BASE_URL") or None,
                   api_key=os.environ.get("OPENAI_API_KEY"),
                   model=os.environ.get("CHAT_MODEL"))

    def routes(self) -> list[BaseRoute]:
        routes: list[BaseRoute] = [
            Route("/chat", self.page, methods=["GET"]),
            Route("/chat/stream", self.stream, methods=["POST"], name="chat_stream"),
            Route("/chat/ndjson", self.stream_ndjson, methods=["POST"]),
            Route("/chat/transcripts", self.saved, methods=["GET"]),
            Mount("/v1", app=self.local),
        ]
        if self.upstream_url is None:
            # Only in front of the local model: in front of a real API the
            # proxy would lend the operator's key to anyone who reaches it.
            routes.append(Route("/proxy/v1/chat/completions", self.proxy, methods=["POST"]))
        return routes

    def relay_for(self, request: Request) -> ChatRelay:
        url = self.upstream_url or _own_url(request) + "/v1"
        if url not in self._relays:
            # The local model gets a dummy key: the real one never leaves for it.
            key = self.api_key if self.upstream_url is not None else "local"
            self._relays[url] = ChatRelay(base_url=url, api_key=key, model=self.model,
                                          first_token_timeout=30, inactivity_timeout=15)
        return self._relays[url]

    async def aclose(self) -> None:
        for relay in self._relays.values():
            await relay.aclose()

    # -- endpoints --------------------------------------------------------------

    async def page(self, request: Request) -> HTMLResponse:
        page = HTMLResponse(chat_page(str(request.url_for("chat_stream").path)))
        _reader_of(request, page)
        return page

    async def stream(self, request: Request) -> Answer:
        return await self._answer(request, "sse")

    async def stream_ndjson(self, request: Request) -> Answer:
        return await self._answer(request, "ndjson")

    async def _answer(self, request: Request, mode: RelayMode) -> Answer:
        try:
            prompt = await _read_prompt(request)
        except RequestBodyError as exc:  # 413, 408 or 400, with its headers
            return refuse_body(exc)
        if prompt is None:
            return _bad_request(f'send {{"prompt": "..."}}, at most {MAX_PROMPT} characters')
        body = {"messages": [{"role": "user", "content": prompt}]}
        reader: list[str] = []

        async def save(result: RelayResult) -> None:
            # Runs after the last byte went out: the reader is not kept waiting.
            self.transcripts.save(reader[0], Transcript(prompt, result.text,
                                                        result.finish_reason, result.usage))

        def unless_saved(outcome: Outcome) -> None:
            if outcome.reason is not EndReason.COMPLETED:
                self.transcripts.discard(outcome.reason)

        response = self.relay_for(request).respond(body, mode, background=save,
                                                   on_outcome=unless_saved)
        reader.append(_reader_of(request, response))
        return response

    async def saved(self, request: Request) -> JSONResponse:
        """This reader's transcripts only (none without the cookie)."""
        mine = self.transcripts.of(_valid_reader(request.cookies.get(READER_COOKIE)))
        return JSONResponse({
            "saved": [{"prompt": t.prompt, "answer": t.answer, "finish_reason": t.finish_reason,
                       "usage": t.usage} for t in mine],
            "discarded": {r.value: n for r, n in self.transcripts.discarded.items()},
        })

    async def proxy(self, request: Request) -> Answer:
        try:
            body = await read_json(request, max_size=MAX_PROXY_BODY)
        except RequestBodyError as exc:
            return refuse_body(exc)
        if not isinstance(body, dict):
            return _bad_request("the body must be a JSON object")
        return self.relay_for(request).respond(body, "openai")


def _valid_reader(value: str | None) -> str | None:
    # A cookie is client input: anything but an id we could have made is none.
    return value if value is not None and _READER_ID.fullmatch(value) else None


def _reader_of(request: Request, response: Answer) -> str:
    """The reader's id from its cookie, or a new one set on ``response``."""
    reader = _valid_reader(request.cookies.get(READER_COOKIE))
    if reader is None:
        reader = secrets.token_urlsafe(16)
        path = request.scope.get("root_path", "") or "/"
        response.headers["set-cookie"] = (f"{READER_COOKIE}={reader}; Path={path}; "
                                          "Max-Age=86400; HttpOnly; SameSite=Strict")
    return reader


def _own_url(request: Request) -> str:
    """This server's URL from the socket it accepted the request on (ASGI
    ``server``), never from the ``Host`` header, which the client chooses: a
    forged one would otherwise send the relay's requests to any host."""
    host, port = request.scope.get("server") or ("127.0.0.1", 8000)
    host = f"[{host}]" if ":" in host else host
    return f"http://{host}:{port}{request.scope.get('root_path', '')}"


async def _read_prompt(request: Request) -> str | None:
    # Bounded: 413 past MAX_PROMPT_BODY, 408 for a stalled body, 400 for
    # malformed or hostile JSON, each a RequestBodyError carrying its status.
    body = await read_json(request, max_size=MAX_PROMPT_BODY)
    prompt = body.get("prompt") if isinstance(body, dict) else None
    if not isinstance(prompt, str) or not prompt.strip() or len(prompt) > MAX_PROMPT:
        return None
    return prompt


def _bad_request(message: str, status: int = 400,
                 headers: Mapping[str, str] | None = None) -> JSONResponse:
    error = {"message": message, "type": "invalid_request_error", "param": None, "code": None}
    return JSONResponse({"error": error}, status_code=status, headers=headers)


def refuse_body(error: RequestBodyError) -> JSONResponse:
    """A body the reader refused: its status (413, 408, 400), its headers
    (``Connection: close`` when the rest of the body is still unread), and an
    OpenAI-shaped error."""
    return _bad_request(error.detail, error.status_code, error.headers)


def chat_routes(*, scale: float = 1.0) -> list[BaseRoute]:
    """The chat demo's routes, upstream from the environment (local by default)."""
    return ChatDemo.from_env(scale=scale).routes()
