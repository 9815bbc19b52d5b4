"""Adaptive micro-batching on an asyncio event loop (no web framework involved).

Concurrent requests are coalesced into one model call:

- a request that finds the queue empty while the last model call served a single request runs
  at the next turn of the event loop: no added latency at concurrency 1;
- when the last call served several requests (there is concurrency), the batcher expects about
  as many again and waits for them, at most ``max_wait`` seconds, then runs what it has;
- a batch never exceeds ``max_batch_size`` rows (a single larger request runs alone);
- with ``use_thread`` the model runs in one worker thread and requests queue up while it works
  (a batch forms from whatever arrived meanwhile); otherwise it runs on the event loop itself.

If a coalesced call fails, each request of the batch is retried alone, so one bad request
cannot fail its neighbours.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")

# process(items) -> one result per item, in order; raises if the whole call failed
Processor = Callable[[Sequence[T]], Sequence[R]]
BatchObserver = Callable[[int, int], None]  # (requests, rows) of each model call


@dataclass
class _Pending(Generic[T, R]):
    item: T
    rows: int
    future: asyncio.Future[R]


class MicroBatcher(Generic[T, R]):
    """Coalesces concurrent ``submit`` calls into calls of ``process`` on lists of items."""

    def __init__(
        self,
        process: Processor[T, R],
        *,
        max_batch_size: int = 32,
        max_wait: float = 0.001,
        use_thread: bool = False,
        on_batch: BatchObserver | None = None,
    ) -> None:
        if max_batch_size < 1:
            raise ValueError("max_batch_size must be at least 1")
        self.process = process
        self.max_batch_size = max_batch_size
        self.max_wait = max(0.0, max_wait)
        self.on_batch = on_batch
        self._queue: deque[_Pending[T, R]] = deque()
        self._queued_rows = 0
        self._expected = 1  # requests served by the last call: how many to wait for
        self._handle: asyncio.Handle | asyncio.TimerHandle | None = None
        self._deadline = 0.0
        self._busy = False
        self._executor = (
            concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="modelhub-model")
            if use_thread
            else None
        )

    @property
    def enabled(self) -> bool:
        return self.max_batch_size > 1

    async def submit(self, item: T, rows: int) -> R:
        """Queue ``item`` (``rows`` rows) and return its result once its batch has run."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[R] = loop.create_future()
        self._queue.append(_Pending(item, rows, future))
        self._queued_rows += rows
        self._schedule(loop)
        return await future

    # -- scheduling ---------------------------------------------------------------------------------
    def _schedule(self, loop: asyncio.AbstractEventLoop) -> None:
        if self._busy or not self._queue:
            return  # the running call schedules the next batch when it ends
        if (
            not self.enabled
            or self._queued_rows >= self.max_batch_size
            or len(self._queue) >= self._expected
            or self.max_wait == 0.0
        ):
            if isinstance(self._handle, asyncio.TimerHandle):
                self._handle.cancel()
                self._handle = None
            if self._handle is None:
                self._handle = loop.call_soon(self._run, loop)
            return
        if self._handle is None:
            self._deadline = loop.time() + self.max_wait
            self._handle = loop.call_at(self._deadline, self._run, loop)

    def _take(self) -> list[_Pending[T, R]]:
        batch = [self._queue.popleft()]
        rows = batch[0].rows
        while self._queue and rows + self._queue[0].rows <= self.max_batch_size:
            pending = self._queue.popleft()
            rows += pending.rows
            batch.append(pending)
        self._queued_rows -= rows
        return batch

    def _run(self, loop: asyncio.AbstractEventLoop) -> None:
        self._handle = None
        if self._busy or not self._queue:
            return
        batch = self._take() if self.enabled else [self._pop_one()]
        self._expected = len(batch)
        if self._executor is None:
            self._finish(batch, _call(self.process, batch))
            self._schedule(loop)
            return
        self._busy = True
        job = loop.run_in_executor(self._executor, _call, self.process, batch)
        job.add_done_callback(lambda done: self._thread_done(loop, batch, done))

    def _pop_one(self) -> _Pending[T, R]:
        pending = self._queue.popleft()
        self._queued_rows -= pending.rows
        return pending

    def _thread_done(
        self,
        loop: asyncio.AbstractEventLoop,
        batch: list[_Pending[T, R]],
        done: asyncio.Future[list[Any]],
    ) -> None:
        self._busy = False
        self._finish(batch, done.result())
        if self._queue:
            # requests that queued while the model worked form the next batch right away
            self._expected = 1
            self._schedule(loop)

    def _finish(self, batch: list[_Pending[T, R]], results: list[Any]) -> None:
        if self.on_batch is not None:
            self.on_batch(len(batch), sum(p.rows for p in batch))
        for pending, result in zip(batch, results, strict=True):
            if pending.future.done():  # the request was cancelled (client went away)
                continue
            if isinstance(result, _Failure):
                pending.future.set_exception(result.error)
            else:
                pending.future.set_result(result)

    def close(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=True)


@dataclass
class _Failure:
    error: BaseException


def _call(process: Processor[T, R], batch: list[_Pending[T, R]]) -> list[Any]:
    """Results for every pending item; on a failed batch, each item retried alone."""
    items = [p.item for p in batch]
    try:
        return list(process(items))
    except Exception as error:
        if len(items) == 1:
            return [_Failure(error)]
        results: list[Any] = []
        for item in items:
            try:
                results.append(process([item])[0])
            except Exception as single_error:
                results.append(_Failure(single_error))
        return results
