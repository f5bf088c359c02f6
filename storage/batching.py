"""Batching of concurrent storage calls: group commit for writes, one read for many.

A burst of CR submissions used to cost one transaction each, and each held the year's
counter row (PostgreSQL) or the database's single write lock (SQLite) from its first
statement to its commit, so they queued behind one another; each also read the freezes
and open CRs around its window on its own. Here calls that arrive while a batch is in
flight wait and go together in the next one: N concurrent CRs cost one BEGIN, one
statement per table and one COMMIT, and one read of the windows they span. A call that
finds nothing in flight goes at once, so a lone submission waits for nobody.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

Item = TypeVar("Item")
Result = TypeVar("Result")

log = logging.getLogger(__name__)


class Batcher(Generic[Item, Result]):
    """Feeds `write` batches of the items handed to `__call__`, one batch at a time.

    `write` gets the items in arrival order and returns one result per item, in the same
    order, all in one transaction. When a batch fails with an error for which
    `retry_alone(error)` is true (a bad row, not a lost connection, whose commit may or
    may not have happened), its items are written again one by one so that one bad item
    fails alone; otherwise every caller of the batch gets the error.
    """

    def __init__(
        self,
        write: Callable[[Sequence[Item]], Awaitable[Sequence[Result]]],
        *,
        retry_alone: Callable[[BaseException], bool],
        max_batch: int = 100,
    ) -> None:
        self._write = write
        self._retry_alone = retry_alone
        self._max_batch = max_batch
        self._pending: list[tuple[Item, asyncio.Future[Result]]] = []
        self._drainer: asyncio.Task[None] | None = None

    async def __call__(self, item: Item) -> Result:
        loop = asyncio.get_running_loop()
        if self._drainer is not None and self._drainer.get_loop() is not loop:
            self._drainer, self._pending = None, []  # a closed loop's batch is gone with it
        future: asyncio.Future[Result] = loop.create_future()
        self._pending.append((item, future))
        if self._drainer is None or self._drainer.done():
            self._drainer = loop.create_task(self._drain())
        return await future

    async def _drain(self) -> None:
        batch: list[tuple[Item, asyncio.Future[Result]]] = []
        try:
            while self._pending:
                batch = [
                    (item, future) for item, future in self._pending[: self._max_batch] if not future.done()
                ]
                del self._pending[: self._max_batch]
                if batch:
                    await self._write_batch(batch)
        except BaseException:  # cancelled with its loop: no caller may wait for ever
            stopped = RuntimeError("the database writer stopped")
            for _, future in batch + self._pending:
                _fail(future, stopped)
            self._pending = []
            raise

    async def _write_batch(self, batch: list[tuple[Item, asyncio.Future[Result]]]) -> None:
        try:
            results = await self._write([item for item, _ in batch])
        except Exception as error:
            if len(batch) == 1 or not self._retry_alone(error):
                for _, future in batch:
                    _fail(future, error)
                return
            log.info("a batch of %d failed (%s); writing its items one by one", len(batch), error)
            for item, future in batch:
                try:
                    alone = await self._write([item])
                except Exception as item_error:
                    _fail(future, item_error)
                else:
                    _succeed(future, alone[0])
            return
        for (_, future), result in zip(batch, results, strict=True):
            _succeed(future, result)
            # One waiter resumes per turn of the loop, which polls the network in between:
            # twenty callers resuming at once would hold new requests up for their sum.
            await asyncio.sleep(0)


# A caller that gave up (its future is cancelled) finds its write stands all the same.
def _succeed(future: asyncio.Future[Result], result: Result) -> None:
    if not future.done():
        future.set_result(result)


def _fail(future: asyncio.Future[Result], error: BaseException) -> None:
    if not future.done():
        future.set_exception(error)
