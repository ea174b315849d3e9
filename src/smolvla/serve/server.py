"""The policy server: websockets + msgpack, one session per client, observations batched into one forward.

It serves the predictor its operator built (a `PolicyRunner` around a loaded policy); clients only
declare what they send. Every bad frame gets an `error` reply and only its own connection is affected.

    connection handlers (one per client)         batcher (one task)
      recv -> parse -> check -> Session.admit      wait for pending -> sleep batch window
      -> pending[session] = obs (latest wins)  ->  take <= max_batch, group by image shapes
                                                   -> predict in a worker thread -> send `actions`
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import websockets
from websockets.asyncio.server import ServerConnection, serve

from smolvla.serve.codec import DEFAULT_MAX_MESSAGE_BYTES, ProtocolError, pack, unpack
from smolvla.serve.protocol import Actions, Error, Hello, Observation, Skipped, Welcome, parse
from smolvla.serve.session import Session
from smolvla.serve.spec import ServerSpec, check_hello, check_observation

log = logging.getLogger(__name__)


class Predictor(Protocol):
    """What the server runs: `predict(images uint8[B,H,W,3] per camera, state float32[B,D], tasks)`
    -> float32[B, spec.chunk_size, spec.action_dim]."""

    spec: ServerSpec

    def predict(self, images: dict[str, np.ndarray], state: np.ndarray, tasks: list[str]) -> np.ndarray: ...


@dataclass(frozen=True)
class ServerConfig:
    host: str = "127.0.0.1"
    port: int = 8765  # 0 picks a free port (see PolicyServer.port)
    token: str | None = None  # shared secret every hello must carry
    tls_cert: str | None = None  # PEM certificate chain; with tls_key, serves wss://
    tls_key: str | None = None
    max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES
    batch_window_s: float = 0.005  # how long the batcher waits for other clients' observations
    max_batch: int = 8
    similarity_epsilon: float = 0.05  # joint-space L2 distance under which an observation is skipped
    hello_timeout_s: float = 10.0
    fps_hint: float | None = None

    def __post_init__(self) -> None:
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ValueError(f"tls_cert and tls_key go together; got cert={self.tls_cert!r}, key={self.tls_key!r}")
        if self.max_batch < 1 or self.batch_window_s < 0 or self.max_message_bytes < 1024:
            raise ValueError(
                f"need max_batch >= 1, batch_window_s >= 0, max_message_bytes >= 1024; got {self.max_batch}, "
                f"{self.batch_window_s}, {self.max_message_bytes}"
            )
        if self.token is not None and not self.token:
            raise ValueError("token must be a non-empty string or None")


def server_ssl_context(cert: str, key: str) -> ssl.SSLContext:
    """TLS context from PEM files (TLS 1.2+)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(cert, key)
    return context


@dataclass
class _Pending:
    session: Session
    ws: ServerConnection
    obs: Observation
    arrived: float


class PolicyServer:
    """Async policy server. `await start()`, then `port` is bound; `await stop()` closes every connection.

    `forward_batch_sizes` records the batch size of every forward pass (for tests and benchmarks).
    """

    def __init__(self, predictor: Predictor, config: ServerConfig) -> None:
        self.predictor, self.config, self.spec = predictor, config, predictor.spec
        self.sessions: dict[str, Session] = {}
        self.forward_batch_sizes: list[int] = []
        self._pending: dict[str, _Pending] = {}
        self._wake = asyncio.Event()
        self._server: Any = None
        self._batcher: asyncio.Task | None = None
        # One worker thread: forwards run one at a time, off the event loop so it keeps answering.
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="smolvla-forward")

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("server not started")
        return self._server.sockets[0].getsockname()[1]

    async def start(self) -> int:
        cfg = self.config
        context = server_ssl_context(cfg.tls_cert, cfg.tls_key) if cfg.tls_cert else None
        # The transport cap is twice the protocol limit: frames in between get a "too_large" reply and the
        # session goes on; beyond it websockets closes the connection (1009) rather than buffer it.
        self._server = await serve(
            self._handle,
            cfg.host,
            cfg.port,
            ssl=context,
            max_size=2 * cfg.max_message_bytes,
            compression=None,
        )
        self._batcher = asyncio.create_task(self._batch_loop(), name="smolvla-batcher")
        log.info("serving %s on %s:%d (tls=%s)", self.spec.description, cfg.host, self.port, context is not None)
        return self.port

    async def stop(self) -> None:
        if self._batcher is not None:
            self._batcher.cancel()
            await asyncio.gather(self._batcher, return_exceptions=True)
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        self._executor.shutdown(wait=False, cancel_futures=True)  # a running forward finishes on its own

    async def serve_forever(self) -> None:
        await self.start()
        try:
            await asyncio.Future()
        finally:
            await self.stop()

    # -- connections ---------------------------------------------------------------------------------

    async def _send(self, ws: ServerConnection, message: Any) -> None:
        try:
            await ws.send(pack(message.to_wire()))
        except websockets.ConnectionClosed:
            log.debug("peer %s gone before a %s reply", ws.remote_address, message.TYPE)

    async def _handshake(self, ws: ServerConnection) -> Session | None:
        try:
            frame = await asyncio.wait_for(ws.recv(), self.config.hello_timeout_s)
            hello = parse(unpack(frame, max_bytes=self.config.max_message_bytes), {Hello.TYPE: Hello})
            check_hello(hello, self.spec, self.config.token)
        except TimeoutError:
            await self._send(ws, Error("bad_message", f"no hello within {self.config.hello_timeout_s} s", fatal=True))
            await ws.close(1008, "no hello")
            return None
        except websockets.ConnectionClosed:
            log.info("client %s left before its hello", ws.remote_address)
            return None
        except ProtocolError as err:
            log.warning("refused client %s: %s", ws.remote_address, err)
            await self._send(ws, Error(err.code, str(err), fatal=True))
            await ws.close(1008, err.code)
            return None
        session = Session(uuid.uuid4().hex[:12], hello)
        spec = self.spec
        welcome = Welcome(
            session_id=session.session_id,
            chunk_size=spec.chunk_size,
            n_action_steps=spec.n_action_steps,
            action_dim=spec.action_dim,
            fps_hint=self.config.fps_hint,
            max_message_bytes=self.config.max_message_bytes,
            policy=spec.description,
        )
        await self._send(ws, welcome)
        log.info(
            "session %s: %r from %s, task %r", session.session_id, hello.client_name, ws.remote_address, hello.task
        )
        return session

    async def _handle(self, ws: ServerConnection) -> None:
        session = await self._handshake(ws)
        if session is None:
            return
        self.sessions[session.session_id] = session
        try:
            async for frame in ws:
                await self._on_frame(ws, session, frame)
        except websockets.ConnectionClosed as err:
            log.info("session %s closed: %s", session.session_id, err)
        finally:
            self.sessions.pop(session.session_id, None)
            self._pending.pop(session.session_id, None)

    async def _on_frame(self, ws: ServerConnection, session: Session, frame: bytes | str) -> None:
        obs_id = None
        try:
            msg = unpack(frame, max_bytes=self.config.max_message_bytes)
            obs_id = msg.get("obs_id") if isinstance(msg.get("obs_id"), int) else None
            obs = parse(msg, {Observation.TYPE: Observation})
            check_observation(obs, session.hello)
        except ProtocolError as err:
            log.warning("session %s: %s", session.session_id, err)
            await self._send(ws, Error(err.code, str(err), fatal=False, obs_id=obs_id))
            return
        reason = session.admit(obs, self.config.similarity_epsilon)
        if reason is not None:
            await self._send(ws, Skipped(obs.obs_id, obs.episode, reason))
            return
        previous = self._pending.get(session.session_id)
        if previous is not None:
            # Only the newest observation of a client is worth computing; the older one is answered now.
            await self._send(ws, Skipped(previous.obs.obs_id, previous.obs.episode, "superseded"))
        self._pending[session.session_id] = _Pending(session, ws, obs, time.monotonic())
        self._wake.set()

    # -- batching ------------------------------------------------------------------------------------

    async def _batch_loop(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            if self.config.batch_window_s:
                await asyncio.sleep(self.config.batch_window_s)
            taken = sorted(self._pending.values(), key=lambda p: p.arrived)[: self.config.max_batch]
            for item in taken:
                del self._pending[item.session.session_id]
            if self._pending:
                self._wake.set()
            groups: dict[tuple, list[_Pending]] = {}
            for item in taken:
                # Clients with different camera resolutions cannot share one stacked tensor.
                shape_key = tuple(sorted((k, v.shape) for k, v in item.obs.images.items()))
                groups.setdefault(shape_key, []).append(item)
            for group in groups.values():
                await self._run_group(group)

    async def _run_group(self, group: list[_Pending]) -> None:
        for item in group:
            item.session.mark_processed(item.obs)
        keys = group[0].obs.images.keys()
        images = {k: np.stack([item.obs.images[k] for item in group]) for k in keys}
        state = np.stack([item.obs.state for item in group])
        tasks = [item.obs.task for item in group]
        start = time.monotonic()
        try:
            loop = asyncio.get_running_loop()
            chunks = await loop.run_in_executor(self._executor, self.predictor.predict, images, state, tasks)
        except Exception as err:  # a failing forward must not take the server down; every client is told
            log.exception("forward pass of batch %d failed", len(group))
            for item in group:
                await self._send(item.ws, Error("internal", f"policy forward failed: {err}", obs_id=item.obs.obs_id))
            return
        elapsed = time.monotonic() - start
        self.forward_batch_sizes.append(len(group))
        for i, item in enumerate(group):
            reply = Actions(
                obs_id=item.obs.obs_id,
                episode=item.obs.episode,
                timestep=item.obs.timestep,
                actions=np.ascontiguousarray(chunks[i], dtype=np.float32),
                sent_at=item.obs.sent_at,
                inference_s=elapsed,
                batch_size=len(group),
            )
            await self._send(item.ws, reply)
