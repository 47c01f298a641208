"""The collector's answers, built as upstream's collector builds them.

Trackers look at little more than the status code, but browsers look at the CORS headers and
caches at ``Cache-Control``, so the shapes are pinned here in one place: the 1x1 pixel, the
``ok`` of a POST, the preflight answer, robots.txt and the cross-domain policy.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping, Sequence
from xml.sax.saxutils import quoteattr

from aiohttp import web

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
        "Access-Control-Allow-Origin": allowed_origin(headers.get("Origin")),
        "Access-Control-Allow-Credentials": "true",
    }


def allowed_origin(origin: str | None) -> str:
    # Origin may list several origins (after redirects); the first is the page's own.
    origins = (origin or "").split()
    if not origins or origins[0] == "null":
        return "*"
    return origins[0]


def pixel() -> web.Response:
    """The 1x1 transparent GIF answered to GET and HEAD tracking requests."""
    return web.Response(body=PIXEL, content_type="image/gif", headers={"Cache-Control": NO_CACHE})


def ok() -> web.Response:
    """The answer to a POST that was stored."""
    return web.Response(text="ok", content_type="text/plain")


def problem(status: int, message: str) -> web.Response:
    """A plain-text error answer; ``message`` names the problem and never the payload."""
    return web.Response(status=status, text=message + "\n", content_type="text/plain")


def preflight(*, headers: Mapping[str, str], max_age_seconds: int) -> web.Response:
    """The answer to a CORS preflight (``OPTIONS``) on any path."""
    return web.Response(
        headers={
            **cors_headers(headers),
            "Access-Control-Allow-Headers": ALLOWED_HEADERS,
            "Access-Control-Max-Age": str(max_age_seconds),
        }
    )


def redirect(location: str) -> web.Response:
    return web.Response(status=302, headers={"Location": location})


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
