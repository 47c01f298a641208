"""The sandbox tests reuse the operator tests' fixtures: the CRD, a namespace per test and
the operator as a ``snowplow-mini operator`` subprocess."""

from tests.operator.conftest import (  # noqa: F401
    crd_installed,
    kube_api,
    minis,
    namespace,
    operator,
    start_operator,
)
