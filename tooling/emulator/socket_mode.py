"""Socket Mode: ``apps.connections.open`` hands out a WebSocket URL, the app connects, and
tests deliver envelopes over it and read the app's acks."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable

import aiohttp
from aiohttp import web

from tooling.emulator.wire import APP_ID, Handler, JSONDict


class SocketMode:
    """The connected clients, and the acks they sent back for our envelopes."""

    def __init__(self, *, address: Callable[[], str], next_id: Callable[[str], str]) -> None:
        self._address = address
        self._next_id = next_id
        self._sockets: list[web.WebSocketResponse] = []
        self.acks: dict[str, JSONDict] = {}
        self._connected = asyncio.Event()

    def handlers(self) -> dict[str, Handler]:
        return {"apps.connections.open": self.connections_open}

    def connections_open(self, params: JSONDict) -> JSONDict:
        return {"url": f"ws://{self._address()}/socket"}

    async def handle_socket(self, request: web.Request) -> web.WebSocketResponse:
        """The socket route: greet the client, then record every ack it sends."""
        socket = web.WebSocketResponse()
        await socket.prepare(request)
        self._sockets.append(socket)
        await socket.send_json(
            {"type": "hello", "num_connections": len(self._sockets), "connection_info": {"app_id": APP_ID}}
        )
        self._connected.set()
        try:
            async for message in socket:
                if message.type is not aiohttp.WSMsgType.TEXT:
                    continue
                data = json.loads(message.data)
                if isinstance(data, dict) and data.get("envelope_id"):
                    self.acks[str(data["envelope_id"])] = data
        finally:
            self._sockets.remove(socket)
        return socket

    async def send(self, envelope_type: str, payload: JSONDict, *, timeout: float = 10.0) -> JSONDict:
        """Deliver one Socket Mode envelope to the connected app and return its ack."""
        await asyncio.wait_for(self._connected.wait(), timeout)
        envelope_id = self._next_id("env")
        await self._sockets[-1].send_json(
            {
                "envelope_id": envelope_id,
                "type": envelope_type,
                "payload": payload,
                "accepts_response_payload": True,
            }
        )
        deadline = time.monotonic() + timeout
        while envelope_id not in self.acks:
            if time.monotonic() > deadline:
                raise AssertionError(f"no ack for Socket Mode envelope {envelope_id}")
            await asyncio.sleep(0.02)
        return self.acks[envelope_id]

    async def close(self) -> None:
        """Close every connected client (the server is going down)."""
        for socket in list(self._sockets):
            await socket.close()
