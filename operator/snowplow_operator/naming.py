"""Names and labels: the API identity of SnowplowMini and the deterministic names of children.

Every child is named ``<mini>-<suffix>`` so that a retry can never create a duplicate, and
carries the common labels below. Selector labels are a fixed subset, because a Deployment's
selector is immutable: anything that may change (owner, branch) stays out of it.
"""

from __future__ import annotations

import re

GROUP = "snowplowmini.dev"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"
KIND = "SnowplowMini"
PLURAL = "snowplowminis"

MANAGER = "snowplow-mini-operator"
LABEL_NAME = "app.kubernetes.io/name"
LABEL_INSTANCE = "app.kubernetes.io/instance"
LABEL_COMPONENT = "app.kubernetes.io/component"
LABEL_MANAGED_BY = "app.kubernetes.io/managed-by"
LABEL_OWNER = f"{GROUP}/owner"
LABEL_BRANCH_SLUG = f"{GROUP}/branch-slug"
LABEL_PULL_REQUEST = f"{GROUP}/pull-request"
CONFIG_HASH_ANNOTATION = f"{GROUP}/config-hash"
APP_NAME = "snowplow-mini"

# Components, in the order they are listed in status and docs.
NSQ = "nsq"
ELASTICSEARCH = "elasticsearch"
KIBANA = "kibana"
COLLECTOR = "collector"
ENRICH = "enrich"
SINK_GOOD = "sink-good"
SINK_BAD = "sink-bad"
COMPONENTS = (NSQ, ELASTICSEARCH, KIBANA, COLLECTOR, ENRICH, SINK_GOOD, SINK_BAD)

MAX_NAME_LENGTH = 40
_SLUG_UNSAFE = re.compile(r"[^a-z0-9]+")


def child_name(mini: str, suffix: str) -> str:
    """The name of one child object, e.g. ``child_name("dev", "sink-good")`` → ``dev-sink-good``."""
    return f"{mini}-{suffix}"


def condition_type(component: str) -> str:
    """The per-component condition type: ``sink-good`` → ``SinkGoodReady``."""
    return "".join(part.capitalize() for part in component.split("-")) + "Ready"


def selector_labels(mini: str, component: str) -> dict[str, str]:
    return {LABEL_NAME: APP_NAME, LABEL_INSTANCE: mini, LABEL_COMPONENT: component}


def common_labels(
    mini: str,
    component: str,
    *,
    owner: str | None = None,
    branch: str | None = None,
    pull_request: int | None = None,
) -> dict[str, str]:
    """Labels on every child: the selector labels, the manager and the per-branch facts."""
    labels = {**selector_labels(mini, component), LABEL_MANAGED_BY: MANAGER}
    if owner:
        labels[LABEL_OWNER] = owner
    if branch:
        labels[LABEL_BRANCH_SLUG] = branch_slug(branch)
    if pull_request is not None:
        labels[LABEL_PULL_REQUEST] = str(pull_request)
    return labels


def branch_slug(branch: str) -> str:
    """A label-safe form of a branch name: ``feature/Big_Thing`` → ``feature-big-thing``.

    At most 63 characters, lower case, starting and ending with a letter or digit; an empty
    result (a branch of only symbols) becomes ``branch``.
    """
    slug = _SLUG_UNSAFE.sub("-", branch.lower()).strip("-")[:63].rstrip("-")
    return slug or "branch"
