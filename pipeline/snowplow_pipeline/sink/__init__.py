"""The Elasticsearch sinks: enriched events into ``good``, bad rows into ``bad``.

Layers, outermost first: ``service`` (wiring, start-up, HTTP for metrics) → ``handling`` (one
message to one outcome) → ``batching`` (concurrent handlers to bulk requests) → ``indexing``
(the Elasticsearch boundary). ``documents`` and ``templates`` are pure and shared by all.
"""
