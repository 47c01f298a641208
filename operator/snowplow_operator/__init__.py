"""The SnowplowMini operator: one Snowplow Mini per SnowplowMini custom resource.

Layers point one way. ``handlers`` (kopf registration) and ``running`` (the entry point) drive
``reconciling``, which does the I/O through ``kube`` and asks the pure modules what to do:
``specs`` (parsing), ``rendering`` and ``pipeline_env`` (spec in, manifests out), ``readiness``,
``conditions`` and ``statuses`` (observed children in, status out). See docs/operator.md.
"""
