"""Where an enrichment's data file is: upstream's ``uri`` + ``database`` pair, on local disk.

Upstream enrich downloads each asset from ``uri`` (HTTP, S3, GCS) at start and refreshes it
periodically. This Mini never fetches anything: a ``uri`` that is a local folder (a path, or a
``file:`` URI) names the folder the ``database`` file is in, with relative paths starting at
the enrichments folder. A remote ``uri`` is reported to the caller, which either falls back to
a bundled database (referer parser, UA parser) or reports a config problem (IP lookups).
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import unquote, urlsplit

from snowplow_pipeline.enrich.enrichments import configs

REMOTE_SCHEMES = frozenset({"http", "https", "s3", "gs"})


def is_remote(uri: str) -> bool:
    return urlsplit(uri).scheme.lower() in REMOTE_SCHEMES


def local_file(
    config: configs.EnrichmentConfig, *, path: str, uri: str, database: str
) -> Path | None:
    """The local file ``uri``/``database`` names, or None with a problem at ``path``.

    ``uri`` must not be remote: callers check ``is_remote`` first and decide what it means.
    """
    parts = urlsplit(uri)
    if parts.scheme == "file":
        folder = Path(unquote(parts.path))
    elif parts.scheme and len(parts.scheme) > 1:
        config.problem(
            f"{path}.uri", f"got {uri!r}, expected a local folder (a path or a file: URI)"
        )
        return None
    else:
        folder = Path(uri)
    file = (config.folder / folder / database).resolve()
    if not file.is_file():
        config.problem(path, f"the database {str(file)!r} does not exist or is not a file")
        return None
    return file
