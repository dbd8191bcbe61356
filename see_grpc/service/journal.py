"""Group commit of fills: the fills of every running execution are stored together, one transaction a batch.

A runner awaits its fill until the batch holding it has committed, so nothing is acknowledged (or published) before
it is stored; but one transaction carries as many fills as arrived while the previous one was committing, which is
what lets throughput grow with the number of executions instead of being capped by one commit's latency.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass

from see_grpc.service.ports import Database, ExecutionRecord, FillRecord, OrderRecord

MAX_BATCH = 1_000


@dataclass
class _Entry:
    fill: FillRecord
    order: OrderRecord
    new_order: bool  # not stored yet (a flattening order), else stored when decided
    execution: ExecutionRecord
    stored: asyncio.Future[bool]


class FillJournal:
    def __init__(self, database: Database) -> None:
        self._db = database
        self._pending: list[_Entry] = []
        self._wakeup = asyncio.Event()
        self._writer: asyncio.Task[None] | None = None

    async def store(self, fill: FillRecord, order: OrderRecord, execution: ExecutionRecord, *, new_order: bool) -> bool:
        """Store the fill with its order's new status and the execution's state; False when the client order was
        filled already (nothing new stored for it)."""
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write_forever(), name="fill-journal")
        stored: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._pending.append(_Entry(fill, order, new_order, execution, stored))
        self._wakeup.set()
        return await stored

    async def close(self) -> None:
        if self._writer is not None:
            self._writer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._writer

    async def _write_forever(self) -> None:
        while True:
            await self._wakeup.wait()
            self._wakeup.clear()
            while self._pending:
                batch, self._pending = self._pending[:MAX_BATCH], self._pending[MAX_BATCH:]
                await self._write(batch)

    async def _write(self, batch: list[_Entry]) -> None:
        try:
            async with self._db.unit_of_work() as uow:
                inserted = await uow.executions.add_fills([e.fill for e in batch])
                for entry in batch:
                    if entry.new_order:
                        await uow.executions.add_order(entry.order)
                await uow.executions.update_orders([e.order for e in batch if not e.new_order])
                latest = {e.execution.execution_id: e.execution for e in batch}
                await uow.executions.update_trading(list(latest.values()))
                await uow.commit()
        except Exception as exc:  # every waiter of this batch learns it was not stored
            for entry in batch:
                if not entry.stored.done():
                    entry.stored.set_exception(exc)
            return
        for entry in batch:
            if not entry.stored.done():
                entry.stored.set_result(entry.fill.client_order_id in inserted)
