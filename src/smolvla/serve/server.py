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
import functools
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

from smolvla.serve.codec import DEFAULT_MAX_MESSAGE_BYTES, ProtocolError, brief, pack, unpack
from smolvla.serve.protocol import (
    MAX_HELLO_BYTES,
    RTC_FEATURE,
    Actions,
    Error,
    Hello,
    Observation,
    Skipped,
    Welcome,
    parse,
)
from smolvla.serve.session import Session
from smolvla.serve.spec import ServerSpec, check_hello, check_observation

log = logging.getLogger(__name__)

# Longest error text sent to a client (and logged): a refusal never grows with the input it refuses.
MAX_ERROR_CHARS = 400


class Predictor(Protocol):
    """What the server runs: `predict(images uint8[B,H,W,3] per camera, state float32[B,D], tasks)`
    -> float32[B, spec.chunk_size, spec.action_dim]; `check_task(task)` raises ValueError (saying why) when
    the policy cannot take a task (e.g. over its token budget), so that one client's task is refused on its
    own instead of failing a batch shared with other clients.

    A predictor with a true `supports_rtc` also takes `predict(..., rtc=[(prefix float32[n, action_dim], delay)
    or None per batch element])`: real-time chunking (docs/protocol.md); the server announces it in the welcome."""

    spec: ServerSpec

    def predict(self, images: dict[str, np.ndarray], state: np.ndarray, tasks: list[str]) -> np.ndarray: ...

    def check_task(self, task: str) -> None: ...


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
    max_pending_connections: int = 16  # connections still owing their hello; more are refused ("busy")
    fps_hint: float | None = None

    def __post_init__(self) -> None:
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ValueError(f"tls_cert and tls_key go together; got cert={self.tls_cert!r}, key={self.tls_key!r}")
        if self.max_batch < 1 or self.batch_window_s < 0 or self.max_message_bytes < 1024:
            raise ValueError(
                f"need max_batch >= 1, batch_window_s >= 0, max_message_bytes >= 1024; got {self.max_batch}, "
                f"{self.batch_window_s}, {self.max_message_bytes}"
            )
        if self.max_pending_connections < 1:
            raise ValueError(f"max_pending_connections must be >= 1, got {self.max_pending_connections}")

    @property
    def hello_max_bytes(self) -> int:
        """Frame limit before the hello is accepted: a stranger cannot make the server buffer a big frame."""
        return min(MAX_HELLO_BYTES, self.max_message_bytes)
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
        self._awaiting_hello = 0  # connections accepted whose hello has not been accepted yet
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
        # Until its hello is accepted a connection may send only a hello-sized frame; anything bigger is
        # closed by websockets (1009) as soon as the frame header arrives, before it is buffered.
        # `_handshake` raises the cap for authenticated sessions.
        self._server = await serve(
            self._handle,
            cfg.host,
            cfg.port,
            ssl=context,
            max_size=cfg.hello_max_bytes,
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

    async def _send_error(
        self, ws: ServerConnection, code: str, text: str, *, fatal: bool = False, obs_id: int | None = None
    ) -> None:
        if len(text) > MAX_ERROR_CHARS:
            text = text[: MAX_ERROR_CHARS - 3] + "..."
        await self._send(ws, Error(code, text, fatal=fatal, obs_id=obs_id))

    async def _handshake(self, ws: ServerConnection) -> Session | None:
        try:
            frame = await asyncio.wait_for(ws.recv(), self.config.hello_timeout_s)
            hello = parse(unpack(frame, max_bytes=self.config.hello_max_bytes), {Hello.TYPE: Hello})
            check_hello(hello, self.spec, self.config.token, self.predictor.check_task)
        except TimeoutError:
            await self._send_error(ws, "bad_message", f"no hello within {self.config.hello_timeout_s} s", fatal=True)
            await ws.close(1008, "no hello")
            return None
        except websockets.ConnectionClosed:
            log.info("client %s left before its hello", ws.remote_address)
            return None
        except ProtocolError as err:
            log.warning("refused client %s: %.*s", ws.remote_address, MAX_ERROR_CHARS, err)
            await self._send_error(ws, err.code, str(err), fatal=True)
            await ws.close(1008, err.code)
            return None
        # Authenticated and compatible: from now on this connection may send full-size observations. The
        # parser reads this limit when the next frame starts, and the client sends nothing before the welcome.
        ws.protocol.max_message_size = 2 * self.config.max_message_bytes
        session = Session(uuid.uuid4().hex[:12], hello, accepted_task=hello.task)
        spec = self.spec
        welcome = Welcome(
            session_id=session.session_id,
            chunk_size=spec.chunk_size,
            n_action_steps=spec.n_action_steps,
            action_dim=spec.action_dim,
            fps_hint=self.config.fps_hint,
            max_message_bytes=self.config.max_message_bytes,
            policy=spec.description,
            features=(RTC_FEATURE,) if self._supports_rtc else (),
        )
        await self._send(ws, welcome)
        log.info(
            "session %s: %r from %s, task %s",
            session.session_id,
            hello.client_name,
            ws.remote_address,
            brief(hello.task),
        )
        return session

    async def _handle(self, ws: ServerConnection) -> None:
        limit = self.config.max_pending_connections
        if self._awaiting_hello >= limit:
            log.warning("refused %s: %d connections already owe their hello", ws.remote_address, limit)
            text = f"server busy: {limit} connections are already waiting to send their hello; retry later"
            await self._send_error(ws, "busy", text, fatal=True)
            await ws.close(1013, "busy")  # 1013: try again later
            return
        self._awaiting_hello += 1
        try:
            session = await self._handshake(ws)
        finally:
            self._awaiting_hello -= 1
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
            self._check_rtc(obs)
            self._check_task(session, obs)
        except ProtocolError as err:
            log.warning("session %s: %.*s", session.session_id, MAX_ERROR_CHARS, err)
            await self._send_error(ws, err.code, str(err), obs_id=obs_id)
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

    @property
    def _supports_rtc(self) -> bool:
        return bool(getattr(self.predictor, "supports_rtc", False))

    def _check_rtc(self, obs: Observation) -> None:
        """Refuse a real-time chunking prefix this server cannot use, or one longer than a chunk."""
        if obs.prefix is None:
            return
        if not self._supports_rtc:
            raise ProtocolError(
                "rtc_unsupported", f"observation {obs.obs_id}: this server's policy cannot do real-time chunking"
            )
        limit = self.spec.chunk_size
        if obs.prefix.shape[0] > limit or obs.inference_delay > limit:
            raise ProtocolError(
                "observation_mismatch",
                f"observation {obs.obs_id}: prefix of {obs.prefix.shape[0]} actions and inference_delay "
                f"{obs.inference_delay} must both be <= the chunk size {limit}",
            )

    def _check_task(self, session: Session, obs: Observation) -> None:
        """Refuse, for this observation only, a task the policy cannot take (it would fail the whole batch)."""
        if obs.task == session.accepted_task:
            return
        try:
            self.predictor.check_task(obs.task)
        except ValueError as err:
            raise ProtocolError("bad_task", f"observation {obs.obs_id}: task refused: {err}") from err
        session.accepted_task = obs.task

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
            predict = self.predictor.predict
            if any(item.obs.prefix is not None for item in group):
                rtc = [None if i.obs.prefix is None else (i.obs.prefix, i.obs.inference_delay) for i in group]
                predict = functools.partial(predict, rtc=rtc)
            chunks = await loop.run_in_executor(self._executor, predict, images, state, tasks)
        except Exception as err:  # a failing forward must not take the server down; every client is told
            # One line per failure (the traceback with debug logging): a client retrying a failing request
            # must not grow the log by a traceback per observation.
            log.error("forward pass of batch %d failed: %.*s", len(group), MAX_ERROR_CHARS, err)
            log.debug("forward pass failure", exc_info=True)
            for item in group:
                await self._send_error(item.ws, "internal", f"policy forward failed: {err}", obs_id=item.obs.obs_id)
            return
        elapsed = time.monotonic() - start
        self.forward_batch_sizes.append(len(group))
        # Checked per client: a non-finite chunk (NaN weights, a state far outside the normalisation stats)
        # is refused to its client only; no NaN or inf ever goes on the wire to a robot. Checked after the
        # cast to the wire's float32, which turns a float64 beyond its range into inf.
        with np.errstate(over="ignore"):  # an overflow is refused just below, not warned about
            chunks = np.asarray(chunks, dtype=np.float32)
        finite = np.isfinite(chunks).all(axis=(1, 2))
        for i, item in enumerate(group):
            if not finite[i]:
                text = (
                    f"observation {item.obs.obs_id}: the policy produced a non-finite action chunk; not sent "
                    f"(largest |state| value: {float(np.abs(item.obs.state).max(initial=0.0)):.3g})"
                )
                log.warning("session %s: %s", item.session.session_id, text)
                await self._send_error(item.ws, "non_finite_action", text, obs_id=item.obs.obs_id)
                continue
            reply = Actions(
                obs_id=item.obs.obs_id,
                episode=item.obs.episode,
                timestep=item.obs.timestep,
                actions=np.ascontiguousarray(chunks[i]),
                sent_at=item.obs.sent_at,
                inference_s=elapsed,
                batch_size=len(group),
            )
            await self._send(item.ws, reply)
