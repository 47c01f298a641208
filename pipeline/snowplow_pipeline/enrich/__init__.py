"""Enrich: collector payloads in, enriched events and bad rows out.

``adapters`` turns a collector payload into raw events (one parameter map each), ``transform``
maps tracker-protocol parameters onto the canonical atomic fields, ``selfdescribing`` resolves
and validates the self-describing JSON an event carries, and ``processing`` runs the whole
chain for one payload. Everything but the Iglu lookups is pure.
"""
