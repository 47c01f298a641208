"""Identity rules: which network user id a request gets, and the cookie that carries it.

Pure functions over header values and settings, so each rule of upstream's collector (the
``SP-Anonymous`` header, the ``nuid`` parameter, the ``sp`` cookie, the do-not-track cookie,
cookie domain matching against ``Origin``) is tested without a server.

Cookie headers are read by hand rather than with ``http.cookies``: the standard library parser
gives up on the whole header at the first malformed pair, while the collector keeps every pair
that RFC 6265 allows and drops only the bad ones.
"""

from __future__ import annotations

import datetime
import email.utils
import os
import re
import time
from collections.abc import Mapping
from typing import NamedTuple

import yarl

from snowplow_pipeline.collector.settings import CollectorSettings, CookieSettings

ANONYMOUS_NETWORK_USER_ID = "00000000-0000-0000-0000-000000000000"
ANONYMOUS_HEADER = "SP-Anonymous"
MAX_NETWORK_USER_ID_CHARS = 128
"""The longest ``network_userid`` the enriched event's schema takes."""

_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_COOKIE_VALUE = re.compile(r"[\x21\x23-\x2b\x2d-\x3a\x3c-\x5b\x5d-\x7e]*")
_QUOTED_COOKIE_VALUE = re.compile(r'"([\x21\x23-\x2b\x2d-\x3a\x3c-\x5b\x5d-\x7e]*)"')
# The variant bits 10xx of RFC 4122 set in a random hex digit.
_VARIANT_DIGIT = {f"{value:x}": f"{value & 0b0011 | 0b1000:x}" for value in range(16)}
# n, u, i or d percent-encoded, in either case of hex digit.
_ENCODED_NUID_LETTER = re.compile(r"%(?:6[eE]|75|69|64)")


class Identity(NamedTuple):
    """Who sent a request, as far as the collector is concerned."""

    network_user_id: str
    is_anonymous: bool
    is_opted_out: bool


def identify(
    *, headers: Mapping[str, str], nuid: str | None, settings: CollectorSettings
) -> Identity:
    """Apply the precedence SP-Anonymous, then ``nuid``, then the cookie, then a new UUID.

    ``nuid`` is the request's ``nuid`` query parameter (``nuid_parameter``), if any.
    """
    cookie_header = headers.get("Cookie")
    cookies = dict(reversed(parse_cookie_header(cookie_header))) if cookie_header else {}
    is_anonymous = ANONYMOUS_HEADER in headers
    if is_anonymous:
        network_user_id = ANONYMOUS_NETWORK_USER_ID
    else:
        from_cookie = cookies.get(settings.cookie.name)
        if from_cookie and len(from_cookie) > MAX_NETWORK_USER_ID_CHARS:
            from_cookie = None  # set by someone else on the parent domain: a new id, not a bad row
        network_user_id = nuid or from_cookie or new_network_user_id()
    return Identity(
        network_user_id=network_user_id,
        is_anonymous=is_anonymous,
        is_opted_out=_is_opted_out(cookies, settings=settings),
    )


def new_network_user_id() -> str:
    """A random UUID (version 4, RFC 4122 variant) as text, as ``str(uuid.uuid4())`` gives.

    Formatted from the random bytes directly: a new visitor's pixel request needs one, and the
    ``UUID`` object would cost a tenth of the collector's own work on that request.
    """
    digits = os.urandom(16).hex()
    return (
        f"{digits[:8]}-{digits[8:12]}-4{digits[13:16]}-"
        f"{_VARIANT_DIGIT[digits[16]]}{digits[17:20]}-{digits[20:]}"
    )


def nuid_parameter(url: yarl.URL) -> str | None:
    """The ``nuid`` query parameter of ``url``, the network user id a server-side tracker sets.

    A tracker's query string is long and almost never has ``nuid``, and parsing it all costs
    more than anything else the collector does with it, so it is parsed only when ``nuid`` may
    be there: written as is, or with one of its letters percent-encoded.
    """
    raw = url.raw_query_string
    if "nuid" not in raw and not _ENCODED_NUID_LETTER.search(raw):
        return None
    return url.query.get("nuid")


def parse_cookie_header(header: str) -> list[tuple[str, str]]:
    """The RFC 6265 valid ``name=value`` pairs of a Cookie header, quotes removed, in order."""
    return [(name, _unquote(value)) for name, value in _valid_pairs(header)]


def clean_cookie_header(header: str) -> str | None:
    """The Cookie header reduced to its valid pairs as sent, or None when none is valid."""
    return "; ".join(f"{name}={value}" for name, value in _valid_pairs(header)) or None


def cookie_domain(*, origin: str | None, settings: CookieSettings) -> str | None:
    """The first configured domain equal to or a parent of a host in ``Origin``.

    Falls back to ``fallback_domain``; None means the cookie gets no Domain attribute and
    belongs to the collector's own host.
    """
    hosts = _origin_hosts(origin)
    for domain in settings.domains:
        bare = domain.lstrip(".").lower()
        if any(host == bare or host.endswith("." + bare) for host in hosts):
            return bare
    return settings.fallback_domain


def set_cookie_header(
    *, network_user_id: str, origin: str | None, settings: CookieSettings, now: datetime.datetime
) -> str | None:
    """The ``Set-Cookie`` value carrying the network user id, or None if it cannot be a cookie.

    A ``nuid`` parameter can hold characters a cookie value may not, or be longer than a stored
    id may be; such an id is still stored with the event, but no cookie is set for it.
    """
    if not _is_cookie_worthy(network_user_id):
        return None
    return f"{settings.name}={network_user_id}; {cookie_attributes(origin, settings, now)}"


def cookie_attributes(origin: str | None, settings: CookieSettings, now: datetime.datetime) -> str:
    """Everything of the ``Set-Cookie`` value after ``name=value``: expiry, domain, flags."""
    max_age_seconds = settings.expiration_days * 86_400
    expires = now + datetime.timedelta(seconds=max_age_seconds)
    attributes = [
        f"Expires={email.utils.format_datetime(expires.astimezone(datetime.UTC), usegmt=True)}",
        f"Max-Age={max_age_seconds}",
    ]
    if domain := cookie_domain(origin=origin, settings=settings):
        attributes.append(f"Domain={domain}")
    attributes += ["Path=/", f"SameSite={settings.same_site}"]
    if settings.secure:
        attributes.append("Secure")
    if settings.http_only:
        attributes.append("HttpOnly")
    return "; ".join(attributes)


class SetCookieHeaders:
    """``set_cookie_header`` for a running collector, at a fraction of its cost.

    The attributes depend only on the ``Origin`` header and the current second, so they are
    formatted once per second for each Origin seen in it (at most ``max_origins`` of them, so a
    client sending a new Origin with every request cannot grow the cache).
    """

    def __init__(self, settings: CookieSettings, *, max_origins: int = 256) -> None:
        self._settings = settings
        self._max_origins = max_origins
        self._second = 0
        self._attributes: dict[str | None, str] = {}

    def header(self, *, network_user_id: str, origin: str | None) -> str | None:
        if not _is_cookie_worthy(network_user_id):
            return None
        second = int(time.time())
        if second != self._second or len(self._attributes) >= self._max_origins:
            self._second = second
            self._attributes.clear()
        attributes = self._attributes.get(origin)
        if attributes is None:
            now = datetime.datetime.fromtimestamp(second, datetime.UTC)
            attributes = self._attributes[origin] = cookie_attributes(origin, self._settings, now)
        return f"{self._settings.name}={network_user_id}; {attributes}"


def _is_cookie_worthy(network_user_id: str) -> bool:
    # A cookie value, and short enough to be stored: enrich refuses a longer network_userid.
    return (
        len(network_user_id) <= MAX_NETWORK_USER_ID_CHARS
        and _COOKIE_VALUE.fullmatch(network_user_id) is not None
    )


def _valid_pairs(header: str) -> list[tuple[str, str]]:
    pairs = []
    for part in header.split(";"):
        name, sep, value = part.strip().partition("=")
        is_valid_value = _COOKIE_VALUE.fullmatch(value) or _QUOTED_COOKIE_VALUE.fullmatch(value)
        if sep and _TOKEN.fullmatch(name) and is_valid_value:
            pairs.append((name, value))
    return pairs


def _unquote(value: str) -> str:
    quoted = _QUOTED_COOKIE_VALUE.fullmatch(value)
    return quoted.group(1) if quoted else value


def _is_opted_out(cookies: Mapping[str, str], *, settings: CollectorSettings) -> bool:
    rule = settings.do_not_track_cookie
    if not rule.enabled or rule.name not in cookies:
        return False
    return re.fullmatch(rule.value, cookies[rule.name]) is not None


def _origin_hosts(origin: str | None) -> list[str]:
    # Origin is "null" or a space-separated list of scheme://host[:port].
    hosts = []
    for serialized in (origin or "").split():
        try:
            host = yarl.URL(serialized).host
        except ValueError:
            continue
        if host:
            hosts.append(host.lower())
    return hosts
