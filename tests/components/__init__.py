"""Real test components (Kubernetes, nsqd, Elasticsearch, Helm): provisioning, fixtures."""
