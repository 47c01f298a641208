"""Tracking handlers: the requests trackers send, stored before they are answered.

Every tracking request goes the same way: read the body (bounded), work out who sent it, capture
it as a collector payload, fit it into messages, publish them, and only then answer. The answer
is decided first and sent last, so a 2xx (or the redirect's 302) is never sent for a request the
publisher did not accept: a ``PublishError`` turns into 503 and trackers retry.

Requests carrying the do-not-track cookie are answered as usual but not stored, as upstream
does; that is the one case where a 2xx stands for nothing stored, and it is the user's choice.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TypeVar

import yarl
from aiohttp import hdrs, web
from aiohttp.web_protocol import RequestPayloadError

from snowplow_pipeline import topics
from snowplow_pipeline.collector import capturing, cookies, responses, splitting
from snowplow_pipeline.collector.metrics import CollectorMetrics
from snowplow_pipeline.collector.settings import CollectorSettings, RedirectSettings

logger = logging.getLogger(__name__)

_READ_CHUNK_BYTES = 64 * 1024


class RedirectError(ValueError):
    """The redirect target is missing, malformed or not allowed; the message says which."""


class TrackingHandlers:
    """The handlers of ``/i``, ``/ice.png`` and ``/{vendor}/{version}`` for one app."""

    def __init__(
        self,
        *,
        settings: CollectorSettings,
        publisher: topics.Publisher,
        metrics: CollectorMetrics,
    ) -> None:
        self._settings = settings
        self._publisher = publisher
        self._metrics = metrics
        self._max_message_bytes = min(settings.max_payload_bytes, settings.max_message_bytes)
        self._set_cookie_headers = cookies.SetCookieHeaders(settings.cookie)

    async def pixel(self, request: web.Request) -> web.StreamResponse:
        """``GET``/``HEAD`` on ``/i`` and ``/ice.png``: tracker protocol v1."""
        path = request.path
        return await self._track(request, route=path, path=path, answer=responses.PIXEL_ANSWER)

    async def vendor(self, request: web.Request) -> web.StreamResponse:
        """Any ``/{vendor}/{version}``: tp2, webhooks, Iglu, redirects and custom paths."""
        route = request.match_info.route.resource.canonical  # type: ignore[union-attr]
        path = self._settings.path_mappings.get(request.path, request.path)
        if not path.startswith("/r/"):
            answer = responses.OK_ANSWER if request.method == "POST" else responses.PIXEL_ANSWER
        elif not self._settings.redirect.enabled:
            self._metrics.count_request(request.method, route, 404)
            return _with_cors(responses.problem(404, "redirects are disabled"), request)
        else:
            # The event is stored even when the target is refused, as upstream does.
            answer = self._redirect_answer(request)
        return await self._track(request, route=route, path=path, answer=answer)

    def _redirect_answer(self, request: web.Request) -> responses.Answer:
        try:
            location = redirect_location(
                request.rel_url.query.get("u"), settings=self._settings.redirect
            )
        except RedirectError as error:
            return responses.refusal(400, str(error))
        return responses.redirect(location)

    async def _track(
        self, request: web.Request, *, route: str, path: str, answer: responses.Answer
    ) -> web.StreamResponse:
        """Store the request, then answer with ``answer``, counting the answer under ``route``.

        The tracking routes count their own answers (the other routes are wrapped by the app):
        a wrapping coroutine costs a pixel request a few percent of its time.
        """
        status: int | None = 500  # what aiohttp answers when anything below raises
        try:
            # Read the body first: a body over the limit is refused before anything else.
            body = None
            if request.method == "POST":
                try:
                    body = await read_body(request, limit_bytes=self._settings.drop_payload_bytes)
                except (web.HTTPRequestEntityTooLarge, web.HTTPBadRequest) as error:
                    raise _with_cors(error, request) from None

            identity = cookies.identify(
                headers=request.headers,
                nuid=cookies.nuid_parameter(request.rel_url),
                settings=self._settings,
            )
            if identity.is_opted_out:
                logger.debug("Request to %s carries the do-not-track cookie; not stored.", path)
            else:
                if body is not None and len(body) > self._max_message_bytes:
                    # Splitting a large batch is seconds of work for a body of many tiny events:
                    # done on a thread, it does not hold up every other request meanwhile.
                    messages = await asyncio.to_thread(
                        self._messages, request, path=path, body=body, identity=identity
                    )
                else:
                    messages = self._messages(request, path=path, body=body, identity=identity)
                try:
                    if messages.raw:
                        await self._publish(topics.RAW_EVENTS, messages.raw)
                    if messages.bad:
                        await self._publish(topics.BAD_RAW_EVENTS, messages.bad)
                except topics.PublishError:
                    status = 503
                    return _with_cors(
                        responses.problem(503, "event not stored; retry later"), request
                    )

            # Only a stored (or opted-out) request gets the tracking answer and the cookie.
            headers = responses.cors_headers(request.headers)
            if cookie := self._cookie(request=request, identity=identity):
                headers[hdrs.SET_COOKIE] = cookie
            response = answer.response(headers)
            status = response.status
            return response
        except web.HTTPException as error:
            status = error.status
            raise
        except asyncio.CancelledError:
            status = None  # the client went away or the server is stopping: nothing answered
            raise
        finally:
            if status is not None:
                self._metrics.count_request(request.method, route, status)

    def _messages(
        self,
        request: web.Request,
        *,
        path: str,
        body: bytes | None,
        identity: cookies.Identity,
    ) -> splitting.Messages:
        """The request captured as a collector payload and fitted into messages."""
        payload = capturing.capture(
            request,
            path=path,
            body=body,
            identity=identity,
            collector=self._settings.collector_name,
            timestamp_ms=time.time_ns() // 1_000_000,
        )
        return splitting.to_messages(
            payload, is_post=request.method == "POST", max_bytes=self._max_message_bytes
        )

    async def _publish(self, topic: str, messages: list[bytes]) -> None:
        """Publish and count; a ``PublishError`` is counted, logged and raised again."""
        started = time.perf_counter()
        try:
            await self._publisher.publish(topic, messages)
        except topics.PublishError as exc:
            self._metrics.count_publish_failure(topic, seconds=time.perf_counter() - started)
            logger.warning("Publishing to %s failed (%s); answering 503.", topic, exc)
            raise
        self._metrics.count_published(topic, messages, seconds=time.perf_counter() - started)

    def _cookie(self, *, request: web.Request, identity: cookies.Identity) -> str | None:
        """The ``Set-Cookie`` value for the answer, if the request gets one."""
        # An anonymous or opted-out request neither gets nor refreshes the cookie.
        if not self._settings.cookie.enabled or identity.is_anonymous or identity.is_opted_out:
            return None
        return self._set_cookie_headers.header(
            network_user_id=identity.network_user_id, origin=request.headers.get("Origin")
        )


async def read_body(request: web.BaseRequest, *, limit_bytes: int) -> bytes:
    """The request body, decompressed, and never more than ``limit_bytes`` of it.

    Raises ``HTTPRequestEntityTooLarge`` (413) naming the limit, and closes the connection
    rather than reading the rest of a body nobody will store. A body that cannot be read to its
    end (compressed data that does not decompress, a client gone before its Content-Length)
    gets ``HTTPBadRequest`` (400) saying so.
    """
    if request.content_length is not None and request.content_length > limit_bytes:
        raise _too_large(
            f"request body is {request.content_length} bytes, limit is {limit_bytes} bytes",
            limit_bytes=limit_bytes,
        )
    try:
        if request.content_length is not None and hdrs.CONTENT_ENCODING not in request.headers:
            # The parser stops at Content-Length, so this reads no more than the limit.
            return await request.content.read()
        # Chunked or compressed: aiohttp hands over the decompressed bytes, which only their
        # count can bound.
        chunks = []
        size_bytes = 0
        async for chunk in request.content.iter_chunked(_READ_CHUNK_BYTES):
            size_bytes += len(chunk)
            if size_bytes > limit_bytes:
                raise _too_large(
                    f"request body is over the limit of {limit_bytes} bytes (decompressed)"
                    if hdrs.CONTENT_ENCODING in request.headers
                    else f"request body is over the limit of {limit_bytes} bytes",
                    limit_bytes=limit_bytes,
                )
            chunks.append(chunk)
        return b"".join(chunks)
    except RequestPayloadError as error:
        raise web.HTTPBadRequest(
            text=f"request body could not be read: {error}\n", content_type="text/plain"
        ) from None
    except ConnectionResetError:
        raise web.HTTPBadRequest(
            text="request body ended before its Content-Length\n", content_type="text/plain"
        ) from None


def redirect_location(target: str | None, *, settings: RedirectSettings) -> str:
    """The ``Location`` for a redirect to ``target``; ``RedirectError`` says why there is none."""
    if not target:
        raise RedirectError("query parameter u is missing; expected the URL to redirect to")
    try:
        url = yarl.URL(target)
    except ValueError:
        url = None
    is_safe = not any(ord(char) < 0x20 or ord(char) == 0x7F for char in target)
    if url is None or not is_safe or url.scheme not in ("http", "https") or not url.host:
        raise RedirectError("query parameter u is not an absolute http or https URL")
    allowed = [host.lower() for host in settings.allowed_hosts]
    if allowed and url.host.lower() not in allowed:
        hosts = ", ".join(allowed)
        raise RedirectError(
            f"query parameter u points to a host that is not allowed; allowed: {hosts}"
        )
    return target


def _too_large(message: str, *, limit_bytes: int) -> web.HTTPRequestEntityTooLarge:
    error = web.HTTPRequestEntityTooLarge(
        max_size=limit_bytes, text=message + "\n", content_type="text/plain"
    )
    error.force_close()
    return error


_ResponseT = TypeVar("_ResponseT", bound=web.Response)


def _with_cors(response: _ResponseT, request: web.BaseRequest) -> _ResponseT:
    response.headers.update(responses.cors_headers(request.headers))
    return response
