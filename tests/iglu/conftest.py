"""Fixtures for the Iglu tests; the static registry lives in tests.helpers for reuse."""

from __future__ import annotations

from tests.helpers.iglu_registry import static_iglu_registry

__all__ = ["static_iglu_registry"]
