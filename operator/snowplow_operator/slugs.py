"""The naming rule that turns any branch name into a SnowplowMini name and hostname label.

CI pipelines name one sandbox per branch, and branch names are anything git accepts:
slashes, capitals, dots, unicode, hundreds of characters. A SnowplowMini name must be a DNS
label of at most ``naming.MAX_NAME_LENGTH`` (40) characters that starts with a letter, because
its children are named ``<name>-<suffix>`` under the 63-character limit. The rule:

1. Unicode is decomposed (NFKD) and combining marks dropped (``café`` → ``cafe``), then lower
   cased.
2. Every run of characters outside ``[a-z0-9]`` becomes one ``-``; leading and trailing
   ``-`` are trimmed.
3. A slug that is empty or does not start with a letter gets the prefix ``b-``.
4. The slug is cut to leave room for ``-`` and 8 hex characters of the SHA-256 of the
   original branch name (UTF-8), then trailing ``-`` are trimmed and the hash is appended.

The hash is always appended, so two branches whose slugs coincide (``feature/x`` and
``Feature_X``, or two long names sharing their first 31 characters) still get different
names, and the same branch always gets the same name, which makes ``sandbox create``
idempotent. The result is also a valid hostname label (``<name>.<domain>``).
"""

from __future__ import annotations

import hashlib
import re
import unicodedata

from snowplow_operator import naming

HASH_LENGTH = 8
PREFIX_FOR_NON_LETTER = "b-"
_UNSAFE = re.compile(r"[^a-z0-9]+")


def sandbox_name(branch: str, *, max_length: int = naming.MAX_NAME_LENGTH) -> str:
    """The SnowplowMini name for ``branch``, e.g. ``feature/Big_Thing`` → ``feature-big-thing-``
    followed by 8 hex characters of the branch's hash."""
    slug = _slug(branch)
    if not slug[:1].isalpha():
        slug = PREFIX_FOR_NON_LETTER + slug
    room = max_length - HASH_LENGTH - 1
    return f"{slug[:room].rstrip('-')}-{branch_hash(branch)}"


def hostname(branch: str, domain: str) -> str:
    """The hostname of a branch's sandbox under ``domain``: ``<sandbox name>.<domain>``."""
    return f"{sandbox_name(branch)}.{domain.strip('.').lower()}"


def branch_hash(branch: str) -> str:
    return hashlib.sha256(branch.encode("utf-8", "surrogatepass")).hexdigest()[:HASH_LENGTH]


def _slug(branch: str) -> str:
    decomposed = unicodedata.normalize("NFKD", branch)
    plain = "".join(c for c in decomposed if not unicodedata.combining(c))
    return _UNSAFE.sub("-", plain.lower()).strip("-")
