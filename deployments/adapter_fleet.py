"""The small tier's replicas as the admin API sees them (`adapters.fleet.AdapterFleet`)."""

from __future__ import annotations

from typing import Mapping

from deployments.handle_client import HandleEngine
from deployments.load_board import BoardClient
from engines.types import AdapterReport, AdapterSpec


class ServeAdapterFleet:
    def __init__(self, small: HandleEngine, board: BoardClient) -> None:
        self._small = small
        self._board = board

    async def probe(self, adapter: AdapterSpec) -> None:
        await self._small.probe_adapter(adapter)

    async def reports(self) -> Mapping[str, AdapterReport]:
        return await self._board.adapter_reports("small")
