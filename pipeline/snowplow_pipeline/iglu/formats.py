"""String formats checked during validation (``"format": "date-time"`` and friends).

jsonschema checks ``date-time``, ``uri`` and ``hostname`` only when optional packages are
installed, and silently accepts anything otherwise; Snowplow's validator does check them. So
the checks Iglu schemas rely on are written here, small and strict to their RFCs, and the
rest (``email``, ``ipv4``, ``ipv6``, ``regex``) come from jsonschema's draft 4 checker, which
needs no extra package for them. Formats nobody registered are accepted, as JSON Schema says.
"""

from __future__ import annotations

import datetime
import re

from jsonschema import Draft4Validator, FormatChecker

_DATE_TIME_RE = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(?:\.\d+)?(?:[Zz]|([+-])(\d{2}):(\d{2}))$"
)
_DATE_RE = re.compile(r"^(\d{4})-(\d{2})-(\d{2})$")
_UUID_RE = re.compile(r"^[0-9a-fA-F]{8}-(?:[0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$")
# RFC 3986 absolute URI: a scheme, then no spaces, controls or characters that must be escaped;
# a % must start an escape. Non-ASCII letters are allowed (IRIs), as browsers send them.
_URI_RE = re.compile(
    r'^[A-Za-z][A-Za-z0-9+.-]*:(?:[^\s\x00-\x1f\x7f"<>\\^`{|}%]|%[0-9A-Fa-f]{2})*$'
)
_HOSTNAME_LABEL_RE = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?$")


def is_date_time(value: object) -> bool:
    """RFC 3339 date-time: date, ``T``, time, optional fraction, and a mandatory offset."""
    if not isinstance(value, str):
        return True
    match = _DATE_TIME_RE.match(value)
    if match is None:
        return False
    year, month, day, hour, minute, second = (int(part) for part in match.groups()[:6])
    offset_hours, offset_minutes = (int(part or 0) for part in match.groups()[7:9])
    # Second 60 is a leap second, which datetime cannot represent but RFC 3339 allows.
    is_real = _is_real_time(year, month, day, hour, minute, min(second, 59))
    return is_real and second <= 60 and offset_hours <= 23 and offset_minutes <= 59


def is_date(value: object) -> bool:
    if not isinstance(value, str):
        return True
    match = _DATE_RE.match(value)
    return match is not None and _is_real_time(*(int(part) for part in match.groups()))


def is_uri(value: object) -> bool:
    return not isinstance(value, str) or _URI_RE.match(value) is not None


def is_hostname(value: object) -> bool:
    if not isinstance(value, str):
        return True
    name = value[:-1] if value.endswith(".") else value
    labels = name.split(".")
    return 0 < len(name) <= 253 and all(_HOSTNAME_LABEL_RE.match(label) for label in labels)


def is_uuid(value: object) -> bool:
    return not isinstance(value, str) or _UUID_RE.match(value) is not None


def _is_real_time(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0
) -> bool:
    try:
        # Only the calendar is checked, so no time zone.
        datetime.datetime(year, month, day, hour, minute, second)
    except ValueError:
        return False
    return True


def format_checker() -> FormatChecker:
    """Draft 4's built-in checks plus the ones above."""
    built_in = Draft4Validator.FORMAT_CHECKER
    checker = FormatChecker(formats=())
    checker.checkers = dict(built_in.checkers)
    ours = {
        "date-time": is_date_time,
        "date": is_date,
        "uri": is_uri,
        "hostname": is_hostname,
        "uuid": is_uuid,
    }
    for name, check in ours.items():
        checker.checks(name)(check)
    return checker
