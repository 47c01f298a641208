"""Content hashes of rendered configuration, stamped on pod templates to roll on change only."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from typing import Any

HASH_CHARS = 16


def config_hash(configs: Iterable[Mapping[str, Any]]) -> str:
    """A stable hash of some rendered configs (ConfigMap or Secret ``data``), order included.

    Keys are sorted, so equal content always gives the same hash, across processes and
    operator restarts: a restarted operator renders the same hashes and rolls nothing.
    """
    digest = hashlib.sha256()
    for config in configs:
        digest.update(json.dumps(config, sort_keys=True, separators=(",", ":")).encode())
        digest.update(b"\0")
    return digest.hexdigest()[:HASH_CHARS]
