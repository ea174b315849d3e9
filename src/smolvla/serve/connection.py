"""The robot client's websocket session: connect with exponential backoff, handshake, hand every frame on.

It runs as its own asyncio task beside the control loop (one event loop, so no locks). A lost or refused
connection is retried for ever; only a refused handshake (`HandshakeRefused`: version, auth, policy
mismatch, or RTC asked of a server without it) ends it, and `wait_connected` raises that refusal.
Torch-free (robot side).
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import Callable

import websockets
from websockets.asyncio.client import connect

from smolvla.serve.client_types import ClientConfig, HandshakeRefused
from smolvla.serve.codec import ProtocolError, pack, unpack
from smolvla.serve.protocol import RTC_FEATURE, Error, Hello, Welcome, parse

log = logging.getLogger(__name__)


class Connection:
    """One client's link to the server.

    hello: builds the handshake message; on_frame(frame): every frame after the welcome; on_lost(): the
    session ended (observations in flight will not be answered); on_error(code, message): an unexpected
    error inside this task (logged and retried, never fatal: the robot would hold for ever).
    `ws` and `welcome` are the live session (None while disconnected); `reconnects` counts successful
    handshakes after the first.
    """

    def __init__(
        self,
        config: ClientConfig,
        hello: Callable[[], Hello],
        on_frame: Callable[[bytes], None],
        on_lost: Callable[[], None],
        on_error: Callable[[str, str], None],
    ) -> None:
        self.config = config
        self._hello, self._on_frame, self._on_lost, self._on_error = hello, on_frame, on_lost, on_error
        self.ws = None
        self.welcome: Welcome | None = None
        self.reconnects = 0
        self.refused: HandshakeRefused | None = None
        self.connected = asyncio.Event()
        self.closing = False

    def attach(self, transport, welcome: Welcome) -> None:
        """Use `transport` (anything with `async send(frame: bytes)`) as an established session."""
        self.ws, self.welcome = transport, welcome
        self.connected.set()

    async def close(self) -> None:
        self.closing = True
        if self.ws is not None:
            await self.ws.close()

    async def run(self) -> None:
        """Connect, handshake and receive until `close()` or a refused handshake."""
        cfg, delay, first = self.config, self.config.reconnect_initial_s, True
        context = ssl.create_default_context(cafile=cfg.ca_file) if cfg.uri.startswith("wss://") else None
        while not self.closing:
            try:
                # proxy=None: robot traffic goes straight to the server, never through an environment proxy.
                async with connect(
                    cfg.uri,
                    ssl=context,
                    proxy=None,
                    max_size=2 * cfg.max_message_bytes,
                    open_timeout=cfg.open_timeout_s,
                    compression=None,
                ) as ws:
                    reply = await self._handshake(ws)
                    self.welcome, self.ws, delay = reply, ws, cfg.reconnect_initial_s
                    self.reconnects += 0 if first else 1
                    first = False
                    self.connected.set()
                    log.info("connected to %s (session %s, %s)", cfg.uri, reply.session_id, reply.policy)
                    async for frame in ws:
                        self._on_frame(frame)
            except HandshakeRefused as err:
                log.error("server refused the handshake: %s", err)
                self.refused = err
                self.connected.set()  # wake waiters so they see the refusal
                return
            except (OSError, TimeoutError, websockets.ConnectionClosed, websockets.InvalidHandshake) as err:
                log.warning("connection to %s lost or refused (%s); retrying in %.2f s", cfg.uri, err, delay)
            except ProtocolError as err:
                log.warning("bad frame from server (%s); reconnecting in %.2f s", err, delay)
            except Exception as err:  # this task must never die silently: the robot would hold for ever
                log.exception("connection task error; reconnecting in %.2f s", delay)
                self._on_error("client_error", f"{type(err).__name__}: {err}")
            finally:
                self.ws = None
                self._on_lost()
                if self.refused is None:  # a refusal keeps the event set so later waiters see it at once
                    self.connected.clear()
            if self.closing:
                return
            await asyncio.sleep(delay)
            delay = min(2 * delay, cfg.reconnect_max_s)

    async def _handshake(self, ws) -> Welcome:
        """Send the hello and read the welcome; a busy server is retried, any other refusal is final."""
        cfg = self.config
        await ws.send(pack(self._hello().to_wire()))
        frame = await asyncio.wait_for(ws.recv(), cfg.open_timeout_s)
        reply = parse(unpack(frame, max_bytes=cfg.max_message_bytes), {"welcome": Welcome, "error": Error})
        if isinstance(reply, Error) and reply.code == "busy":
            raise ConnectionRefusedError(f"server busy: {reply.message}")  # retried with backoff
        if isinstance(reply, Error):
            raise HandshakeRefused(reply.code, reply.message)
        if cfg.aggregate == "rtc" and RTC_FEATURE not in reply.features:
            raise HandshakeRefused(
                "rtc_unsupported", f"aggregate 'rtc' needs real-time chunking, which {cfg.uri} lacks"
            )
        return reply
