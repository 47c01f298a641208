"""The collector's answers, built as upstream's collector builds them.

Trackers look at little more than the status code, but browsers look at the CORS headers and
caches at ``Cache-Control``, so the shapes are pinned here in one place: the 1x1 pixel, the
``ok`` of a POST, the preflight answer, robots.txt and the cross-domain policy.
"""

from __future__ import annotations

import base64
import dataclasses
from collections.abc import Mapping, Sequence
from xml.sax.saxutils import quoteattr

from aiohttp import hdrs, web

PIXEL = base64.b64decode("R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAICRAEAOw==")
NO_CACHE = "no-cache, no-store, must-revalidate"
ALLOWED_HEADERS = "Content-Type, SP-Anonymous"

ROBOTS_TXT = (
    "".join(
        f"User-agent: {agent}\nDisallow: /\n\n" for agent in ("*", "Googlebot", "AdsBot-Google")
    ).rstrip("\n")
    + "\n"
)


def cors_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """Allow the calling page (its Origin, or any) to read the answer with credentials."""
    return {
        hdrs.ACCESS_CONTROL_ALLOW_ORIGIN: allowed_origin(headers.get("Origin")),
        hdrs.ACCESS_CONTROL_ALLOW_CREDENTIALS: "true",
    }


def allowed_origin(origin: str | None) -> str:
    # Origin may list several origins (after redirects); the first is the page's own.
    origins = (origin or "").split()
    if not origins or origins[0] == "null":
        return "*"
    return origins[0]


@dataclasses.dataclass(frozen=True, slots=True)
class Answer:
    """A tracking answer, chosen before the event is stored and sent once it is.

    The headers that depend on the request (CORS, the cookie) are added when it is sent, in
    one go: the answer is built once per request, not built and then amended. Header names are
    aiohttp's ``hdrs`` constants: already case-folded, they make the response's headers cheaper
    to build than plain strings would.
    """

    status: int
    headers: Mapping[str, str]
    body: bytes | None = None

    def response(self, extra_headers: Mapping[str, str]) -> web.Response:
        return web.Response(
            status=self.status, body=self.body, headers={**self.headers, **extra_headers}
        )


TEXT_PLAIN = "text/plain; charset=utf-8"

PIXEL_ANSWER = Answer(200, {hdrs.CONTENT_TYPE: "image/gif", hdrs.CACHE_CONTROL: NO_CACHE}, PIXEL)
"""The 1x1 transparent GIF answered to GET and HEAD tracking requests."""

OK_ANSWER = Answer(200, {hdrs.CONTENT_TYPE: TEXT_PLAIN}, b"ok")
"""The answer to a POST that was stored."""


def refusal(status: int, message: str) -> Answer:
    """A plain-text error answer; ``message`` names the problem and never the payload."""
    return Answer(status, {hdrs.CONTENT_TYPE: TEXT_PLAIN}, (message + "\n").encode())


def problem(status: int, message: str) -> web.Response:
    """``refusal`` as a response, built at once (headers can still be added to it)."""
    return refusal(status, message).response({})


def preflight(*, headers: Mapping[str, str], max_age_seconds: int) -> web.Response:
    """The answer to a CORS preflight (``OPTIONS``) on any path."""
    return web.Response(
        headers={
            **cors_headers(headers),
            "Access-Control-Allow-Headers": ALLOWED_HEADERS,
            "Access-Control-Max-Age": str(max_age_seconds),
        }
    )


def redirect(location: str) -> Answer:
    return Answer(302, {hdrs.LOCATION: location})


def robots_txt() -> web.Response:
    return web.Response(text=ROBOTS_TXT, content_type="text/plain")


def crossdomain_xml(*, domains: Sequence[str], secure: bool) -> web.Response:
    """The Flash cross-domain policy allowing ``domains``."""
    secure_attribute = quoteattr(str(secure).lower())
    lines = [
        '<?xml version="1.0"?>',
        "<cross-domain-policy>",
        *(
            f"  <allow-access-from domain={quoteattr(domain)} secure={secure_attribute} />"
            for domain in domains
        ),
        "</cross-domain-policy>",
    ]
    return web.Response(text="\n".join(lines) + "\n", content_type="text/xml")
