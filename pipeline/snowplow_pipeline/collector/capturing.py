"""Capturing: one HTTP request in, one collector payload out.

The payload records the request as upstream's collector does, so that enrich sees the same
fields whichever collector wrote them: client IP, receive time, user agent, referer, path (after
custom path mapping), the raw query string, the body, every header as ``Name: value``, the
content type, the host and the network user id.

Two choices differ from a naive copy of the headers. The Cookie header keeps only RFC 6265
valid cookies, as upstream does. ``Authorization`` and ``Proxy-Authorization`` are never stored:
a Mini often sits behind basic auth, and its credentials must not end up in every event (users
asked upstream for exactly this, snowplow-mini#245).
"""

from __future__ import annotations

import functools

import yarl
from aiohttp import web

from snowplow_pipeline import payloads
from snowplow_pipeline.collector import cookies

UNKNOWN_IP = "unknown"

_NEVER_STORED = frozenset({"authorization", "proxy-authorization"})
_NOT_STORED_WHEN_ANONYMOUS = frozenset({"x-forwarded-for", "x-real-ip", "cookie"})


def capture(
    request: web.BaseRequest,
    *,
    path: str,
    body: bytes | None,
    identity: cookies.Identity,
    collector: str,
    timestamp_ms: int,
) -> payloads.CollectorPayload:
    """The collector payload for ``request``; ``path`` is the path after mapping."""
    headers = request.headers
    content_type = headers.get("Content-Type")
    return payloads.CollectorPayload(
        ip_address=UNKNOWN_IP if identity.is_anonymous else client_ip(request),
        timestamp_ms=timestamp_ms,
        collector=collector,
        user_agent=headers.get("User-Agent"),
        referer_uri=headers.get("Referer"),
        path=path,
        querystring=request.rel_url.raw_query_string or None,
        body=body.decode("utf-8", errors="replace") if body else None,
        headers=stored_headers(request, is_anonymous=identity.is_anonymous),
        content_type=content_type.lower() if content_type else None,
        hostname=hostname(request),
        network_user_id=identity.network_user_id,
    )


def client_ip(request: web.BaseRequest) -> str:
    """The first ``X-Forwarded-For`` entry (the original client), else the TCP peer."""
    forwarded = request.headers.get("X-Forwarded-For")
    if forwarded and (first := forwarded.split(",", 1)[0].strip()):
        return first
    return request.remote or UNKNOWN_IP


def hostname(request: web.BaseRequest) -> str | None:
    """The host the request was sent to, without the port; None for a malformed Host."""
    return _host_of_authority(request.host)


@functools.lru_cache(maxsize=256)
def _host_of_authority(authority: str) -> str | None:
    # What ``request.url.host`` gives, without building the request's whole URL each time: a
    # collector sees the same few Host values over and over.
    try:
        return yarl.URL.build(scheme="http", authority=authority).host
    except ValueError:
        return None


def stored_headers(request: web.BaseRequest, *, is_anonymous: bool) -> list[str]:
    """Every header as ``Name: value``, with cookies cleaned and private ones left out."""
    stored = []
    for name, value in request.headers.items():
        lowered = name.lower()
        if lowered in _NEVER_STORED:
            continue
        if is_anonymous and lowered in _NOT_STORED_WHEN_ANONYMOUS:
            continue
        if lowered == "cookie":
            cleaned = cookies.clean_cookie_header(value)
            if cleaned is None:
                continue
            value = cleaned
        stored.append(f"{name}: {value}")
    return stored
