"""The NSQ boundary: publish over nsqd's HTTP API, consume over nsqd's TCP protocol.

``NsqPublisher`` implements ``topics.Publisher`` with binary ``MPUB`` requests (length-prefixed,
so messages may contain newlines). It checks nsqd's limits before sending: a message over the
per-message limit is refused with ``MessageTooLargeError`` naming the limit, and one call is
split into as many requests as the body limit needs. A call that fails part-way may leave the
first requests published; the caller retries the whole call, so delivery is at least once.

``NsqConsumer`` is a small asyncio client of the TCP protocol (magic ``  V2``, ``IDENTIFY``,
``SUB``, ``RDY``, ``FIN``, ``REQ``, ``TOUCH``, ``NOP``, ``CLS``) written here rather than taken
from ``ansq``: ansq 0.3 (alpha, no release since 2023) keeps ``RDY 1`` per connection and raises
``NotImplementedError`` for ``set_max_in_flight``, has no backoff for failing handlers, and
empties its message queue when a connection closes. What we need is: up to ``max_in_flight``
handlers at once, ``FIN`` only after the handler returned, ``REQ`` with a growing delay when it
raised, a pause (``RDY 0``) with exponential backoff while handlers keep failing (Elasticsearch
down), ``TOUCH`` for long handlers, reconnection with backoff, and a drain on shutdown.

Delivery is at least once. nsqd redelivers every message that is not finished in time: after a
crash, after a lost connection (the ``FIN`` of a handler that completes afterwards cannot be
sent), or when a ``REQ`` delay ends. Handlers must therefore tolerate duplicates.

Errors: ``topics.PublishError`` means "retry later" (nsqd unreachable, slow or failing);
its subclass ``MessageRejectedError`` (and ``MessageTooLargeError``) means "give up": sending the
same messages again will be refused again. The consumer never raises for a lost nsqd; it logs,
reconnects and reports ``is_connected() == False`` meanwhile.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
import random
import socket
import struct
import time
from collections.abc import Iterator, Sequence
from typing import Any

import aiohttp
import pydantic
import yarl

from snowplow_pipeline import topics

logger = logging.getLogger(__name__)

DEFAULT_MAX_MESSAGE_BYTES = 1024 * 1024  # nsqd --max-msg-size
DEFAULT_MAX_BODY_BYTES = 5 * 1024 * 1024  # nsqd --max-body-size

_MAGIC = b"  V2"
_FRAME_RESPONSE, _FRAME_ERROR, _FRAME_MESSAGE = 0, 1, 2
_HEARTBEAT = b"_heartbeat_"
_CLOSE_WAIT = b"CLOSE_WAIT"
# Errors after which nsqd keeps the connection open: the message had already timed out.
_NON_FATAL_ERRORS = (b"E_FIN_FAILED", b"E_REQ_FAILED", b"E_TOUCH_FAILED")
_CONNECT_TIMEOUT_SECONDS = 10.0
_CLOSE_TIMEOUT_SECONDS = 5.0
_MPUB_HEADER_BYTES = 4
_MPUB_PREFIX_BYTES = 4


class MessageRejectedError(topics.PublishError):
    """nsqd refuses these messages as they are; retrying them unchanged cannot succeed."""


class MessageTooLargeError(MessageRejectedError):
    """A message is larger than nsqd accepts; ``limit_bytes`` is the limit it exceeds."""

    def __init__(self, message: str, *, size_bytes: int, limit_bytes: int) -> None:
        super().__init__(message)
        self.size_bytes = size_bytes
        self.limit_bytes = limit_bytes


class NsqProtocolError(Exception):
    """nsqd answered a consumer connection with an error or with something unreadable."""


# --- publishing ----------------------------------------------------------------------------


class ConsumerSources(pydantic.BaseModel):
    """Where a consuming process finds nsqd: direct TCP addresses, nsqlookupd, or both."""

    nsqd_tcp_addresses: list[str] = pydantic.Field(
        default_factory=lambda: ["127.0.0.1:4150"],
        description="nsqd TCP addresses (host:port) to consume from.",
    )
    lookupd_http_addresses: list[str] = pydantic.Field(
        default_factory=list, description="nsqlookupd HTTP addresses to find more nsqd."
    )

    @pydantic.field_validator("nsqd_tcp_addresses", "lookupd_http_addresses")
    @classmethod
    def _hosts_and_ports(cls, addresses: list[str]) -> list[str]:
        for address in addresses:
            split_address(address.removeprefix("http://").rstrip("/"))
        return addresses

    @pydantic.model_validator(mode="after")
    def _has_a_source(self) -> ConsumerSources:
        if not self.nsqd_tcp_addresses and not self.lookupd_http_addresses:
            raise ValueError("give nsqd_tcp_addresses or lookupd_http_addresses (or both)")
        return self


class PublisherSettings(pydantic.BaseModel):
    """The settings group of a process that publishes to nsqd (its ``NSQ__*`` variables)."""

    nsqd_http_address: str = pydantic.Field(
        default="127.0.0.1:4151", description="nsqd HTTP address (host:port) to publish to."
    )
    max_message_bytes: int = pydantic.Field(
        default=DEFAULT_MAX_MESSAGE_BYTES,
        gt=0,
        description="nsqd's --max-msg-size; larger is refused.",
    )
    max_body_bytes: int = pydantic.Field(
        default=DEFAULT_MAX_BODY_BYTES,
        gt=0,
        description="nsqd's --max-body-size; publishes are split.",
    )
    publish_timeout_seconds: float = pydantic.Field(
        default=10.0, gt=0, description="How long one publish request to nsqd may take."
    )

    @pydantic.field_validator("nsqd_http_address")
    @classmethod
    def _host_and_port(cls, address: str) -> str:
        split_address(address.removeprefix("http://").rstrip("/"))
        return address

    def build_publisher(self) -> NsqPublisher:
        return NsqPublisher(
            http_address=self.nsqd_http_address,
            max_message_bytes=self.max_message_bytes,
            max_body_bytes=self.max_body_bytes,
            timeout_seconds=self.publish_timeout_seconds,
        )


class NsqPublisher:
    """``topics.Publisher`` over nsqd's HTTP API; one per process, closed with ``close()``.

    ``max_message_bytes`` and ``max_body_bytes`` must not exceed nsqd's ``--max-msg-size`` and
    ``--max-body-size`` (their defaults are nsqd's defaults).
    """

    def __init__(
        self,
        *,
        http_address: str,
        max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
        max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
        timeout_seconds: float = 10.0,
        ping_timeout_seconds: float = 1.0,
    ) -> None:
        if max_message_bytes + _MPUB_HEADER_BYTES + _MPUB_PREFIX_BYTES > max_body_bytes:
            raise ValueError(
                f"max_body_bytes: got {max_body_bytes}, expected at least max_message_bytes "
                f"+ 8 = {max_message_bytes + 8} so that one message fits in one request"
            )
        self.base_url = http_url(http_address)
        self.max_message_bytes = max_message_bytes
        self.max_body_bytes = max_body_bytes
        self._timeout = aiohttp.ClientTimeout(total=timeout_seconds)
        self._ping_timeout = aiohttp.ClientTimeout(total=ping_timeout_seconds)
        self._session: aiohttp.ClientSession | None = None
        self._waiting: dict[str, list[_Waiting]] = {}
        self._flushing: dict[str, asyncio.Task[None]] = {}
        self._mpub_urls: dict[str, yarl.URL] = {}

    async def publish(self, topic: str, messages: Sequence[bytes]) -> None:
        """Publish all ``messages`` to ``topic``; return only once nsqd accepted every one.

        Raises ``MessageTooLargeError``/``MessageRejectedError`` before sending anything when a
        message breaks nsqd's rules, and ``topics.PublishError`` when nsqd did not accept a
        request (earlier requests of the same call may then have been accepted).

        Calls made while a request to nsqd is under way are sent together in the next one (a
        collector answering many trackers at once makes one request to nsqd, not one each);
        each call still returns only when its own messages were accepted, and fails with the
        request that carried them.
        """
        check_messages(messages, max_message_bytes=self.max_message_bytes)
        if not messages:
            return
        # One message always fits in one request (the constructor holds the limits so).
        if len(messages) > 1 and encoded_size(messages) > self.max_body_bytes:
            for batch in split_batches(messages, max_body_bytes=self.max_body_bytes):
                await self._post_mpub(topic, encode_mpub(batch), count=len(batch))
            return
        waiting = _Waiting(list(messages), asyncio.get_running_loop().create_future())
        self._waiting.setdefault(topic, []).append(waiting)
        if topic not in self._flushing:
            self._flushing[topic] = asyncio.create_task(self._flush(topic))
        await waiting.accepted

    async def _flush(self, topic: str) -> None:
        """Send what waits for ``topic``, one request at a time, until nothing waits."""
        try:
            while self._waiting.get(topic):
                batch = self._take_batch(topic)
                messages = [m for waiting in batch for m in waiting.messages]
                try:
                    await self._post_mpub(topic, encode_mpub(messages), count=len(messages))
                except Exception as exc:  # every caller in this request learns its fate
                    for waiting in batch:
                        if not waiting.accepted.done():
                            waiting.accepted.set_exception(exc)
                    continue
                for waiting in batch:
                    if not waiting.accepted.done():
                        waiting.accepted.set_result(None)
        finally:
            del self._flushing[topic]

    def _take_batch(self, topic: str) -> list[_Waiting]:
        """The oldest waiting calls whose messages fit in one request body."""
        queue = self._waiting[topic]
        taken: list[_Waiting] = []
        size = _MPUB_HEADER_BYTES
        while queue:
            extra = sum(len(m) + _MPUB_PREFIX_BYTES for m in queue[0].messages)
            if taken and size + extra > self.max_body_bytes:
                break
            taken.append(queue.pop(0))
            size += extra
        return taken

    async def is_healthy(self) -> bool:
        """Whether nsqd answers ``GET /ping`` with ``OK`` within the ping timeout."""
        try:
            async with self._get_session().get(
                f"{self.base_url}/ping", timeout=self._ping_timeout
            ) as response:
                return response.status == 200 and await response.read() == b"OK"
        except (aiohttp.ClientError, TimeoutError) as exc:
            logger.debug("nsqd %s did not answer /ping: %s", self.base_url, _describe(exc))
            return False

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def __aenter__(self) -> NsqPublisher:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def _post_mpub(self, topic: str, body: bytes, *, count: int) -> None:
        url = self._mpub_urls.get(topic)
        if url is None:  # built once per topic: yarl's query building is not free
            mpub = yarl.URL(f"{self.base_url}/mpub")
            url = self._mpub_urls[topic] = mpub.with_query(topic=topic, binary="true")
        try:
            async with self._get_session().post(url, data=body, timeout=self._timeout) as response:
                status = response.status
                if status == 200:
                    return
                answer = (await response.text(errors="replace"))[:200].strip()
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise topics.PublishError(
                f"nsqd {url} did not accept {count} messages for {topic}: {_describe(exc)}"
            ) from exc
        raise _refusal(status=status, answer=f"{url} answered {status} {answer}")

    def _get_session(self) -> aiohttp.ClientSession:
        # Created on first use, inside the running loop, as aiohttp requires.
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession()
        return self._session


@dataclasses.dataclass(slots=True)
class _Waiting:
    """One ``publish`` call's messages and the future its caller awaits."""

    messages: list[bytes]
    accepted: asyncio.Future[None]


def encoded_size(messages: Sequence[bytes]) -> int:
    """Bytes of the binary ``MPUB`` body carrying ``messages``."""
    return _MPUB_HEADER_BYTES + sum(len(m) + _MPUB_PREFIX_BYTES for m in messages)


def check_messages(messages: Sequence[bytes], *, max_message_bytes: int) -> None:
    """Refuse what nsqd would refuse: empty messages and messages over ``max_message_bytes``."""
    for index, message in enumerate(messages):
        if not message:
            raise MessageRejectedError(f"messages[{index}] is empty; nsqd refuses empty messages")
        if len(message) > max_message_bytes:
            raise MessageTooLargeError(
                f"messages[{index}] is {len(message)} bytes, "
                f"the NSQ message limit is {max_message_bytes} bytes",
                size_bytes=len(message),
                limit_bytes=max_message_bytes,
            )


def split_batches(messages: Sequence[bytes], *, max_body_bytes: int) -> Iterator[list[bytes]]:
    """Consecutive batches whose binary ``MPUB`` body stays within ``max_body_bytes``."""
    batch: list[bytes] = []
    body_bytes = _MPUB_HEADER_BYTES
    for message in messages:
        size = _MPUB_PREFIX_BYTES + len(message)
        if batch and body_bytes + size > max_body_bytes:
            yield batch
            batch, body_bytes = [], _MPUB_HEADER_BYTES
        batch.append(message)
        body_bytes += size
    if batch:
        yield batch


def encode_mpub(messages: Sequence[bytes]) -> bytes:
    """The binary ``MPUB`` body: a message count, then each message after its length."""
    body = bytearray(struct.pack(">i", len(messages)))
    for message in messages:
        body += struct.pack(">i", len(message))
        body += message
    return bytes(body)


def http_url(address: str) -> str:
    """``host:port`` or a URL, as a base URL without a trailing slash."""
    address = address.rstrip("/")
    return address if "://" in address else f"http://{address}"


def _refusal(*, status: int, answer: str) -> topics.PublishError:
    if status == 413:
        return MessageRejectedError(
            f"nsqd {answer}: its --max-msg-size or --max-body-size is smaller than the limits "
            "this publisher was given"
        )
    if 400 <= status < 500:
        return MessageRejectedError(f"nsqd {answer}")
    return topics.PublishError(f"nsqd {answer}")


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


# --- consuming -----------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, slots=True)
class Message:
    """One message as nsqd delivers it; ``attempts`` counts this delivery."""

    id: bytes
    attempts: int
    timestamp_ns: int
    body: bytes


def decode_message(data: bytes) -> Message:
    """Decode the payload of a message frame (8-byte time, 2-byte attempts, 16-byte id)."""
    if len(data) < 26:
        raise NsqProtocolError(f"message frame of {len(data)} bytes, expected at least 26")
    timestamp_ns, attempts = struct.unpack(">qH", data[:10])
    return Message(id=data[10:26], attempts=attempts, timestamp_ns=timestamp_ns, body=data[26:])


def encode_command(name: bytes, *params: bytes, body: bytes | None = None) -> bytes:
    line = b" ".join((name, *params)) + b"\n"
    return line if body is None else line + struct.pack(">i", len(body)) + body


class _Connection:
    """One subscribed TCP connection to one nsqd."""

    def __init__(
        self,
        *,
        address: str,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        identity: dict[str, Any],
    ) -> None:
        self.address = address
        self.reader = reader
        self.writer = writer
        self.max_ready = int(identity.get("max_rdy_count", 2500))
        self.msg_timeout_seconds = int(identity.get("msg_timeout", 60_000)) / 1000
        self.ready = 0
        self.is_closing = False
        self.is_write_closed = False

    @classmethod
    async def open(
        cls, *, address: str, topic: str, channel: str, identify: dict[str, Any]
    ) -> _Connection:
        """Connect, ``IDENTIFY`` and ``SUB``; the connection starts with ``RDY 0``."""
        host, port = split_address(address)
        async with asyncio.timeout(_CONNECT_TIMEOUT_SECONDS):
            reader, writer = await asyncio.open_connection(host, port)
            try:
                identify_body = json.dumps(identify).encode()
                writer.write(_MAGIC + encode_command(b"IDENTIFY", body=identify_body))
                identity = json.loads(await _expect_response(reader, what="IDENTIFY"))
                writer.write(encode_command(b"SUB", topic.encode(), channel.encode()))
                await _expect_response(reader, what="SUB")
            except BaseException:
                writer.close()
                raise
        return cls(address=address, reader=reader, writer=writer, identity=identity)

    @property
    def is_open(self) -> bool:
        return not self.is_write_closed and not self.writer.is_closing()

    async def read_frame(self) -> tuple[int, bytes]:
        return await _read_frame(self.reader)

    def send(self, command: bytes) -> None:
        """Write a command if the connection is still open; commands to a closed one are moot."""
        if self.is_open:
            self.writer.write(command)

    def set_ready(self, count: int) -> None:
        count = min(count, self.max_ready)
        if count != self.ready and self.is_open:
            self.ready = count
            self.send(encode_command(b"RDY", str(count).encode()))

    def start_close(self) -> None:
        """Ask nsqd to send no more messages; it answers ``CLOSE_WAIT``."""
        if not self.is_closing:
            self.is_closing = True
            self.ready = 0
            self.send(encode_command(b"CLS"))

    def finish_writing(self) -> None:
        """Send no more commands; nsqd closes the connection once it has read them all."""
        if self.is_open:
            self.is_write_closed = True
            if self.writer.can_write_eof():
                self.writer.write_eof()

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(OSError):
            await self.writer.wait_closed()


async def _read_frame(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    (size,) = struct.unpack(">i", await reader.readexactly(4))
    if size < 4:
        raise NsqProtocolError(f"frame of {size} bytes, expected at least 4")
    data = await reader.readexactly(size)
    (frame_type,) = struct.unpack(">i", data[:4])
    return frame_type, data[4:]


async def _expect_response(reader: asyncio.StreamReader, *, what: str) -> bytes:
    while True:
        frame_type, data = await _read_frame(reader)
        if frame_type == _FRAME_RESPONSE and data != _HEARTBEAT:
            return data
        if frame_type == _FRAME_ERROR:
            raise NsqProtocolError(f"{what} refused: {data.decode(errors='replace')}")


def split_address(address: str) -> tuple[str, int]:
    """``host:port`` (or ``[v6]:port``) as a host and a port number."""
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit():
        raise ValueError(f"NSQ address: got {address!r}, expected host:port")
    return host.strip("[]"), int(port)


@dataclasses.dataclass(frozen=True, slots=True)
class ConsumerOptions:
    """Timing of an ``NsqConsumer``; the defaults suit production, tests shorten them."""

    requeue_delay_seconds: float = 1.0
    max_requeue_delay_seconds: float = 60.0
    backoff_seconds: float = 1.0
    max_backoff_seconds: float = 30.0
    reconnect_seconds: float = 0.5
    max_reconnect_seconds: float = 15.0
    heartbeat_seconds: float = 15.0
    msg_timeout_seconds: float | None = None
    lookupd_poll_seconds: float = 30.0
    drain_timeout_seconds: float = 30.0


class NsqConsumer:
    """Consumes topics from nsqd over TCP, from fixed addresses and/or found through nsqlookupd.

    ``consume`` runs until ``stop()`` is called (then drains and returns) or until cancelled.
    ``msg_timeout_seconds`` (nsqd's default when None) is how long nsqd waits for a ``FIN``
    before it redelivers, also after a crash of this process.
    """

    def __init__(
        self,
        *,
        nsqd_tcp_addresses: Sequence[str] = (),
        lookupd_http_addresses: Sequence[str] = (),
        options: ConsumerOptions | None = None,
        client_id: str | None = None,
    ) -> None:
        if not nsqd_tcp_addresses and not lookupd_http_addresses:
            raise ValueError("NsqConsumer needs nsqd TCP addresses or nsqlookupd HTTP addresses")
        for address in nsqd_tcp_addresses:
            split_address(address)
        self.nsqd_tcp_addresses = list(nsqd_tcp_addresses)
        self.lookupd_http_addresses = [http_url(address) for address in lookupd_http_addresses]
        self.options = options or ConsumerOptions()
        self.client_id = client_id or socket.gethostname()
        self._subscriptions: set[_Subscription] = set()
        self._is_stopping = False

    async def consume(
        self, topic: str, channel: str, handler: topics.Handler, *, max_in_flight: int = 100
    ) -> None:
        """Hand each message of ``topic`` on ``channel`` to ``handler``, many at once.

        A message is finished when its handler returns and requeued with a growing delay when
        it raises; after ``stop()`` in-flight handlers get ``drain_timeout_seconds`` to finish.
        Cancellation abandons in-flight handlers (nsqd redelivers their messages).
        """
        if max_in_flight < 1:
            raise ValueError(f"max_in_flight: got {max_in_flight}, expected at least 1")
        subscription = _Subscription(
            consumer=self,
            topic=topic,
            channel=channel,
            handler=handler,
            max_in_flight=max_in_flight,
        )
        self._subscriptions.add(subscription)
        try:
            await subscription.run(is_stopping=self._is_stopping)
        finally:
            self._subscriptions.discard(subscription)

    def stop(self) -> None:
        """Stop taking messages; each ``consume`` returns once its handlers have finished."""
        self._is_stopping = True
        for subscription in self._subscriptions:
            subscription.stop()

    def is_connected(self) -> bool:
        """Whether every running ``consume`` is subscribed on at least one nsqd."""
        return bool(self._subscriptions) and all(
            subscription.is_connected() for subscription in self._subscriptions
        )

    def identify_body(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "client_id": self.client_id,
            "hostname": socket.gethostname(),
            "user_agent": "snowplow-mini-k8s",
            "feature_negotiation": True,
            "heartbeat_interval": int(self.options.heartbeat_seconds * 1000),
        }
        if self.options.msg_timeout_seconds is not None:
            body["msg_timeout"] = int(self.options.msg_timeout_seconds * 1000)
        return body


class _Touching:
    """``TOUCH`` a message every half message timeout while its handler runs."""

    def __init__(self, connection: _Connection, message_id: bytes) -> None:
        self._connection = connection
        self._command = encode_command(b"TOUCH", message_id)
        self._interval_seconds = connection.msg_timeout_seconds / 2
        self._timer = asyncio.get_running_loop().call_later(self._interval_seconds, self._touch)

    def _touch(self) -> None:
        self._connection.send(self._command)
        self._timer = asyncio.get_running_loop().call_later(self._interval_seconds, self._touch)

    def cancel(self) -> None:
        self._timer.cancel()


class _Subscription:
    """One ``consume`` call: its connections, handler tasks, backoff state and shutdown."""

    def __init__(
        self,
        *,
        consumer: NsqConsumer,
        topic: str,
        channel: str,
        handler: topics.Handler,
        max_in_flight: int,
    ) -> None:
        self.consumer = consumer
        self.options = consumer.options
        self.topic = topic
        self.channel = channel
        self.handler = handler
        self.max_in_flight = max_in_flight
        self.connections: dict[str, _Connection] = {}
        self.handling: dict[asyncio.Task[None], tuple[_Connection, Message]] = {}
        self.supervisors: dict[str, asyncio.Task[None]] = {}
        self.discovered: set[str] = set()
        self.backoff_level = 0
        self.pause_timer: asyncio.TimerHandle | None = None
        self.stopping = asyncio.Event()

    def stop(self) -> None:
        self.stopping.set()

    def is_connected(self) -> bool:
        return any(connection.is_open for connection in self.connections.values())

    async def run(self, *, is_stopping: bool) -> None:
        if is_stopping:
            return
        for address in self.consumer.nsqd_tcp_addresses:
            self._supervise(address, is_discovered=False)
        poller = (
            asyncio.create_task(self._poll_lookupd())
            if self.consumer.lookupd_http_addresses
            else None
        )
        try:
            await self.stopping.wait()
            logger.info(
                "Stopping consumption of %s/%s; draining handlers.", self.topic, self.channel
            )
            await self._drain()
        finally:
            # On cancellation too: nothing of this subscription may outlive it.
            self._cancel_pause()
            tasks = [*self.supervisors.values(), *self.handling, *([poller] if poller else [])]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            for connection in list(self.connections.values()):
                await connection.close()

    # -- connections

    def _supervise(self, address: str, *, is_discovered: bool) -> None:
        if address not in self.supervisors:
            task = asyncio.create_task(self._keep_connected(address, is_discovered=is_discovered))
            self.supervisors[address] = task

    async def _keep_connected(self, address: str, *, is_discovered: bool) -> None:
        """Connect, read until the connection ends, and reconnect with a growing delay."""
        delay = self.options.reconnect_seconds
        while not self.stopping.is_set():
            try:
                connection = await _Connection.open(
                    address=address,
                    topic=self.topic,
                    channel=self.channel,
                    identify=self.consumer.identify_body(),
                )
            except (OSError, asyncio.IncompleteReadError, NsqProtocolError, ValueError) as exc:
                if is_discovered and address not in self.discovered:
                    break
                logger.warning(
                    "Cannot subscribe to %s/%s on nsqd %s (%s); retrying in %.1f s.",
                    self.topic,
                    self.channel,
                    address,
                    _describe(exc),
                    delay,
                )
                await self._sleep_unless_stopping(delay * random.uniform(0.8, 1.2))
                delay = min(delay * 2, self.options.max_reconnect_seconds)
                continue
            delay = self.options.reconnect_seconds
            await self._serve_connection(connection)
            await self._sleep_unless_stopping(delay)
        self.supervisors.pop(address, None)

    async def _serve_connection(self, connection: _Connection) -> None:
        logger.info("Consuming %s/%s from nsqd %s.", self.topic, self.channel, connection.address)
        self.connections[connection.address] = connection
        self._apply_ready()
        try:
            await self._read_frames(connection)
        except (OSError, asyncio.IncompleteReadError, NsqProtocolError, TimeoutError) as exc:
            if not self.stopping.is_set():
                logger.warning(
                    "Lost nsqd %s while consuming %s/%s (%s); reconnecting.",
                    connection.address,
                    self.topic,
                    self.channel,
                    _describe(exc),
                )
        finally:
            if self.connections.get(connection.address) is connection:
                del self.connections[connection.address]
            await connection.close()
            self._apply_ready()

    async def _read_frames(self, connection: _Connection) -> None:
        # nsqd sends a heartbeat every heartbeat interval: silence for two means it is gone.
        silence_seconds = 2 * self.options.heartbeat_seconds + 5
        while True:
            async with asyncio.timeout(silence_seconds):
                frame_type, data = await connection.read_frame()
            if frame_type == _FRAME_MESSAGE:
                self._on_message(connection, decode_message(data))
            elif frame_type == _FRAME_RESPONSE and data == _HEARTBEAT:
                connection.send(encode_command(b"NOP"))
            elif frame_type == _FRAME_RESPONSE and data == _CLOSE_WAIT:
                logger.debug("nsqd %s will send no more messages.", connection.address)
            elif frame_type == _FRAME_ERROR and data.startswith(_NON_FATAL_ERRORS):
                logger.debug("nsqd %s: %s", connection.address, data.decode(errors="replace"))
            elif frame_type == _FRAME_ERROR:
                raise NsqProtocolError(data.decode(errors="replace"))

    async def _poll_lookupd(self) -> None:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as session:
            while not self.stopping.is_set():
                self.discovered = await self._look_up(session)
                for address in self.discovered:
                    self._supervise(address, is_discovered=True)
                await self._sleep_unless_stopping(self.options.lookupd_poll_seconds)

    async def _look_up(self, session: aiohttp.ClientSession) -> set[str]:
        """The nsqd TCP addresses that nsqlookupd lists for the topic (all lookupds merged)."""
        found: set[str] = set()
        for base_url in self.consumer.lookupd_http_addresses:
            try:
                async with session.get(f"{base_url}/lookup", params={"topic": self.topic}) as r:
                    answer = await r.json(content_type=None) if r.status == 200 else {}
            except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
                logger.warning("nsqlookupd %s did not answer (%s).", base_url, _describe(exc))
                found |= self.discovered  # keep what we knew rather than drop connections
                continue
            # nsq >= 1.0 answers the object itself; older versions wrapped it in "data".
            producers = answer.get("producers", answer.get("data", {}).get("producers", []))
            found |= {f"{p['broadcast_address']}:{p['tcp_port']}" for p in producers}
        return found

    # -- messages

    def _on_message(self, connection: _Connection, message: Message) -> None:
        if self.stopping.is_set():
            # Sent before nsqd saw our RDY 0: give it straight back for another consumer.
            connection.send(encode_command(b"REQ", message.id, b"0"))
            return
        task = asyncio.create_task(self._handle(connection, message))
        self.handling[task] = (connection, message)
        task.add_done_callback(self.handling.pop)

    async def _handle(self, connection: _Connection, message: Message) -> None:
        touching = _Touching(connection, message.id)
        try:
            await self.handler(message.body)
        except asyncio.CancelledError:
            connection.send(encode_command(b"REQ", message.id, b"0"))
            raise
        except Exception as exc:
            # A warning without traceback: the handler knows whether its failure is a defect
            # worth a traceback (and logs it) or an outage (nsqd, Elasticsearch) that is not.
            delay = self._requeue_delay(message)
            logger.warning(
                "Handler failed on %s/%s (attempt %d): %s; the message comes back in %.1f s.",
                self.topic,
                self.channel,
                message.attempts,
                _describe(exc),
                delay,
            )
            connection.send(encode_command(b"REQ", message.id, str(int(delay * 1000)).encode()))
            self._on_failure()
        else:
            connection.send(encode_command(b"FIN", message.id))
            self._on_success()
        finally:
            touching.cancel()

    def _requeue_delay(self, message: Message) -> float:
        delay = self.options.requeue_delay_seconds * message.attempts
        return min(delay, self.options.max_requeue_delay_seconds)

    # -- flow control

    def _apply_ready(self) -> None:
        """Give each open connection its share of ``max_in_flight`` (RDY is nsqd's in-flight cap).

        Paused: 0 everywhere. Recovering from backoff: 1 per connection, to test the water.
        """
        open_connections = [c for c in self.connections.values() if c.is_open and not c.is_closing]
        if self.stopping.is_set() or self.pause_timer is not None:
            share = 0
        elif self.backoff_level:
            share = 1
        else:
            share = max(1, self.max_in_flight // max(1, len(open_connections)))
        for connection in open_connections:
            connection.set_ready(share)

    def _on_failure(self) -> None:
        if self.pause_timer is not None or self.stopping.is_set():
            return  # messages that were in flight before the pause do not make it longer
        self.backoff_level += 1
        pause = min(
            self.options.backoff_seconds * 2 ** (self.backoff_level - 1),
            self.options.max_backoff_seconds,
        )
        logger.warning(
            "Handlers on %s/%s are failing; pausing consumption for %.1f s.",
            self.topic,
            self.channel,
            pause,
        )
        self.pause_timer = asyncio.get_running_loop().call_later(pause, self._end_pause)
        self._apply_ready()

    def _end_pause(self) -> None:
        self.pause_timer = None
        self._apply_ready()

    def _on_success(self) -> None:
        if not self.backoff_level or self.pause_timer is not None:
            return
        self.backoff_level -= 1
        if not self.backoff_level:
            logger.info(
                "Handlers on %s/%s succeed again; consuming at full rate.", self.topic, self.channel
            )
            self._apply_ready()

    def _cancel_pause(self) -> None:
        if self.pause_timer is not None:
            self.pause_timer.cancel()
            self.pause_timer = None

    # -- shutdown

    async def _drain(self) -> None:
        """RDY 0 and CLS everywhere, wait (bounded) for the handlers, then close cleanly."""
        self._cancel_pause()
        for connection in list(self.connections.values()):
            connection.start_close()
        await self._wait_for_handlers()

        # Half-close: nsqd reads every FIN and REQ before it sees the end, then closes its
        # side, which ends our read loops. Closing at once could reset the connection instead.
        for connection in list(self.connections.values()):
            connection.finish_writing()
        if self.supervisors:
            await asyncio.wait(list(self.supervisors.values()), timeout=_CLOSE_TIMEOUT_SECONDS)

    async def _wait_for_handlers(self) -> None:
        """Wait up to ``drain_timeout_seconds``; then cancel the rest (they requeue)."""
        deadline = time.monotonic() + self.options.drain_timeout_seconds
        while self.handling and time.monotonic() < deadline:
            await asyncio.wait(list(self.handling), timeout=deadline - time.monotonic())
        if not self.handling:
            return
        logger.warning(
            "%d handlers on %s/%s did not finish within %.0f s; their messages are requeued.",
            len(self.handling),
            self.topic,
            self.channel,
            self.options.drain_timeout_seconds,
        )
        remaining = list(self.handling)
        for task in remaining:
            task.cancel()
        await asyncio.gather(*remaining, return_exceptions=True)

    async def _sleep_unless_stopping(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await self.stopping.wait()
