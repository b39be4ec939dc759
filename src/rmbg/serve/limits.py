"""Load control: admission to a bounded queue, one worker thread per slot, the upload cap.

A request's life in the service::

    admitted? --no--> 503 + Retry-After (at once)
       | yes
    read the body (413 past the upload cap, while reading) -> parse (400/415/422)
       |
    wait for a worker slot (queue wait) -> decode, infer, encode in the worker thread
       |
    response; the whole of it within the deadline, else 504

At most ``workers + max_queue`` requests are admitted at once, so memory is bounded by that many
uploads and results. A worker slot is given back when its thread finishes, not when a request
times out: inference cannot be interrupted, so a computing request that missed its deadline
keeps its slot until its image is done (and its result is dropped).
"""

from __future__ import annotations

import asyncio
import concurrent.futures as cf
import contextlib
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from .errors import PayloadTooLarge

__all__ = ["BodyLimit", "Gate"]

T = TypeVar("T")

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class Gate:
    """A bounded admission count, ``workers`` run slots and the thread pool behind them.

    Args:
        workers: Slots (and threads) that process images at once.
        max_queue: Requests admitted beyond ``workers``, waiting for a slot.
    """

    def __init__(self, workers: int, max_queue: int) -> None:
        self.workers = workers
        self.max_queue = max_queue
        self.admitted = 0  # in the service: reading, waiting or computing
        self.running = 0  # worker threads busy (includes results nobody waits for any more)
        self.waiting = 0  # waiting for a slot
        self._slots = asyncio.Semaphore(workers)
        self._pool = cf.ThreadPoolExecutor(workers, thread_name_prefix="rmbg-serve")

    @property
    def capacity(self) -> int:
        """Requests admitted at most: ``workers + max_queue``."""
        return self.workers + self.max_queue

    def try_admit(self) -> bool:
        """Take a place in the service, or ``False`` at once when it is full."""
        if self.admitted >= self.capacity:
            return False
        self.admitted += 1
        return True

    def leave(self) -> None:
        """Give back a place taken by :meth:`try_admit`."""
        self.admitted -= 1

    async def run(self, fn: Callable[[], T]) -> tuple[T, float]:
        """Wait for a slot, run ``fn`` in a worker thread; return its result and the wait (s).

        Cancelling (a deadline) while waiting leaves the queue at once; while computing, the
        thread finishes ``fn`` and gives its slot back then.
        """
        started = time.perf_counter()
        self.waiting += 1
        try:
            await self._slots.acquire()
        finally:
            self.waiting -= 1
        waited = time.perf_counter() - started
        loop = asyncio.get_running_loop()
        self.running += 1
        try:
            future = self._pool.submit(fn)
        except BaseException:
            self._release()
            raise

        def done(_: cf.Future[T]) -> None:
            with contextlib.suppress(RuntimeError):  # the loop is closed: nobody is left to serve
                loop.call_soon_threadsafe(self._release)

        future.add_done_callback(done)
        return await asyncio.wrap_future(future), waited

    def _release(self) -> None:
        self.running -= 1
        self._slots.release()

    def close(self) -> None:
        """Wait for the worker threads to finish what they hold, then stop them."""
        self._pool.shutdown(wait=True)


class BodyLimit:
    """ASGI middleware: refuse a request body larger than ``limit`` bytes while it is read.

    A ``Content-Length`` over the limit gets 413 before a byte of the body is read (and before
    ``100 Continue``); a body without one (chunked) raises :class:`PayloadTooLarge` from the
    first chunk that crosses the limit, which the app turns into 413.
    """

    def __init__(self, app: ASGIApp, limit: int, reply: Callable[[PayloadTooLarge], Any]) -> None:
        self.app = app
        self.limit = limit
        self.reply = reply

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers", ()):
            if name == b"content-length":
                try:
                    announced = int(value)
                except ValueError:
                    announced = 0
                if announced > self.limit:
                    response = self.reply(PayloadTooLarge.body(announced, self.limit))
                    await response(scope, receive, send)
                    return
        received = 0
        limit = self.limit

        async def limited() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise PayloadTooLarge.body(received, limit, partial=True)
            return message

        await self.app(scope, limited, send)
