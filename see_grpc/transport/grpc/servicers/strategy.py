from __future__ import annotations

import grpc

from see.v1 import strategy_pb2, strategy_pb2_grpc
from see_grpc.service.ports import StrategyRecord
from see_grpc.service.strategies import StrategyCatalogue
from see_grpc.transport.grpc import convert

MESSAGE_CACHE_SIZE = 1024


class StrategyServicer(strategy_pb2_grpc.StrategyServiceServicer):
    def __init__(self, catalogue: StrategyCatalogue) -> None:
        self._catalogue = catalogue
        # Converting a record costs more than serving it; reuse the message while the record is unchanged.
        self._messages: dict[str, tuple[StrategyRecord, strategy_pb2.Strategy]] = {}

    def _message(self, record: StrategyRecord) -> strategy_pb2.Strategy:
        cached = self._messages.get(record.id)
        if cached is not None and cached[0] is record:
            return cached[1]
        if len(self._messages) >= MESSAGE_CACHE_SIZE:
            self._messages.clear()
        message = convert.strategy(record)
        self._messages[record.id] = (record, message)
        return message

    async def ListStrategies(
        self, request: strategy_pb2.ListStrategiesRequest, context: grpc.aio.ServicerContext
    ) -> strategy_pb2.ListStrategiesResponse:
        page = await self._catalogue.browse(
            page_size=request.page_size,
            page_token=request.page_token,
            type=request.type,
            status=convert.STATUS_FROM_PROTO.get(request.status, ""),
        )
        return strategy_pb2.ListStrategiesResponse(
            strategies=[convert.strategy(s) for s in page.items], next_page_token=page.next_page_token
        )

    async def GetStrategy(
        self, request: strategy_pb2.GetStrategyRequest, context: grpc.aio.ServicerContext
    ) -> strategy_pb2.GetStrategyResponse:
        record = await self._catalogue.get(request.strategy_id)
        return strategy_pb2.GetStrategyResponse(strategy=self._message(record))

    async def RegisterStrategy(
        self, request: strategy_pb2.RegisterStrategyRequest, context: grpc.aio.ServicerContext
    ) -> strategy_pb2.RegisterStrategyResponse:
        record = await self._catalogue.register(
            name=request.name,
            description=request.description,
            instruments=list(request.instruments),
            timeframe=request.timeframe,
            parameters=convert.from_struct(request.parameters),
            type=request.type,
            code=request.code if request.HasField("code") else None,
        )
        return strategy_pb2.RegisterStrategyResponse(strategy=convert.strategy(record))

    async def UpdateStrategyStatus(
        self, request: strategy_pb2.UpdateStrategyStatusRequest, context: grpc.aio.ServicerContext
    ) -> strategy_pb2.UpdateStrategyStatusResponse:
        record = await self._catalogue.set_status(
            request.strategy_id, convert.STATUS_FROM_PROTO.get(request.status, "")
        )
        return strategy_pb2.UpdateStrategyStatusResponse(strategy=convert.strategy(record))

    async def DeleteStrategy(
        self, request: strategy_pb2.DeleteStrategyRequest, context: grpc.aio.ServicerContext
    ) -> strategy_pb2.DeleteStrategyResponse:
        await self._catalogue.delete(request.strategy_id)
        return strategy_pb2.DeleteStrategyResponse()
