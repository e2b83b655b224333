"""A TCP relay between the bot and the simulator, for the connection failures a socket alone
cannot show: a half-open route (nothing forwarded either way, nothing closed) and an exchange
that cannot be reached at all for a while (connections refused)."""

from __future__ import annotations

import asyncio
import contextlib


class Relay:
    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.port = 0
        self.connections = 0
        self._server: asyncio.Server | None = None
        self._writers: list[asyncio.StreamWriter] = []
        self._blackholed: set[int] = set()  # connection ids that no longer forward
        self._next_id = 0

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws"

    async def start(self) -> Relay:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    def blackhole(self) -> None:
        """Every connection open now goes silent both ways; nothing is closed. New
        connections work."""
        self._blackholed.update(range(self._next_id))

    async def sever(self) -> None:
        """Close every connection and stop listening: the exchange is unreachable (connects
        are refused) until `start()` listens again on the same port."""
        if self._server is not None:
            self._server.close()
            for w in self._writers:
                w.close()
            self._writers.clear()
            with contextlib.suppress(Exception):
                await self._server.wait_closed()
            self._server = None

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        cid = self._next_id
        self._next_id += 1
        self.connections += 1
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        except OSError:
            writer.close()
            return
        self._writers += [writer, up_writer]
        await asyncio.gather(
            self._pump(reader, up_writer, cid),
            self._pump(up_reader, writer, cid),
            return_exceptions=True,
        )

    async def _pump(self, src: asyncio.StreamReader, dst: asyncio.StreamWriter, cid: int) -> None:
        while True:
            data = await src.read(65536)
            if not data:
                if cid not in self._blackholed:
                    dst.close()
                return
            if cid in self._blackholed:
                continue  # swallowed: the peer hears nothing, and nothing is closed
            dst.write(data)
            await dst.drain()
