"""Iglu: schema keys, registries, the resolver and validation of self-describing JSON.

``schemakeys`` and ``validation`` are pure; ``registries`` and ``resolving`` do I/O. Callers
resolve a schema with ``resolving.Resolver.lookup`` and check data with
``validation.validate``.
"""
