"""Property-based: whatever a client sends, the collector answers below 500 and nothing vanishes.

Hypothesis generates query strings, POST bodies, headers and self-describing JSON (entities
and self-describing events with arbitrary schema keys and data) and sends them to a real
``snowplow-mini local`` process, one request at a time. The local Mini's ``/micro/all`` counts
are the oracle: after a 2xx, exactly the expected number of events has become good events or
bad rows (one per event of a ``payload_data`` envelope, one for anything else); a 4xx makes
none; a 5xx or a dead process fails the test. The resolver has no registry at all, so nothing
is fetched from any other host and every custom schema key ends as a resolution failure.
"""

from __future__ import annotations

import dataclasses
import json
import pathlib
import string
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.components.processes import ManagedProcess, free_port, wait_until
from tests.local.conftest import resolver_config

PAYLOAD_DATA = "iglu:com.snowplowanalytics.snowplow/payload_data/jsonschema/1-0-4"
CONTEXTS = "iglu:com.snowplowanalytics.snowplow/contexts/jsonschema/1-0-0"
UNSTRUCT = "iglu:com.snowplowanalytics.snowplow/unstruct_event/jsonschema/1-0-0"
TP2 = "/com.snowplowanalytics.snowplow/tp2"
EXAMPLES = 300
OUTCOME_SECONDS = 10.0

FUZZ_SETTINGS = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    derandomize=True,  # the same examples in CI as on a laptop
)

# Field names the enrich transform knows, so that examples reach its parsers, and any others.
KNOWN_FIELDS = ["e", "eid", "p", "tv", "aid", "url", "refr", "dtm", "stm", "ttm", "tz", "res",
                "vp", "cs", "lang", "uid", "duid", "nuid", "tnuid", "ip", "ua", "se_ca", "se_ac",
                "se_va", "pp_mix", "tr_tt", "ti_qu", "ue_pr", "ue_px", "co", "cx", "vid", "sid",
                "f_pdf", "cd", "ds"]  # fmt: skip
EVENT_TYPES = ["pv", "pp", "se", "ue", "tr", "ti", "ad", "", "x"]

field_names = st.one_of(st.sampled_from(KNOWN_FIELDS), st.text(min_size=1, max_size=12))
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=12,
)
schema_keys = st.one_of(
    st.sampled_from(
        [
            "iglu:com.acme/checkout/jsonschema/1-0-0",
            "iglu:com.snowplowanalytics.snowplow/web_page/jsonschema/1-0-0",
            "iglu:com.snowplowanalytics.snowplow/link_click/jsonschema/1-0-1",
            "iglu:../../etc/passwd/jsonschema/1-0-0",
        ]
    ),
    st.text(max_size=60),
)
self_describing = st.fixed_dictionaries(
    {"schema": schema_keys, "data": json_values},
    optional={"extra": json_values},
)


@st.composite
def field_values(draw: st.DrawFn, name: str) -> str:
    """A value for ``name``: self-describing JSON where the protocol expects it, else text."""
    if name in ("ue_pr", "co"):
        envelope = UNSTRUCT if name == "ue_pr" else CONTEXTS
        inner = draw(self_describing if name == "ue_pr" else st.lists(self_describing, max_size=3))
        return json.dumps({"schema": envelope, "data": inner})
    return draw(st.text(max_size=40))


@st.composite
def events(draw: st.DrawFn) -> dict[str, str]:
    names = draw(st.lists(field_names, max_size=8, unique=True))
    event = {name: draw(field_values(name)) for name in names}
    # payload_data requires e, p and tv as strings: then each event is judged on its own.
    event.update({"e": draw(st.sampled_from(EVENT_TYPES)), "p": "web", "tv": "fuzz-0"})
    return event


header_names = st.text(alphabet=string.ascii_letters + "-", min_size=1, max_size=20).filter(
    lambda name: name.lower() not in ("content-length", "transfer-encoding", "host", "expect")
)
header_values = st.text(
    alphabet=st.characters(min_codepoint=0x20, max_codepoint=0xFF, exclude_characters="\x7f"),
    max_size=60,
).map(str.strip)
headers = st.dictionaries(header_names, header_values, max_size=5)


@dataclasses.dataclass
class LocalMini:
    url: str
    process: ManagedProcess

    def counts(self) -> dict[str, int]:
        with urllib.request.urlopen(f"{self.url}/micro/all", timeout=10) as response:
            return dict(json.load(response))


@pytest.fixture(scope="module")
def local_mini(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalMini]:
    """``snowplow-mini local`` with a resolver of no registries; its log goes to a file.

    (tests/local's ``run_local_mini`` pipes stderr without reading it: after some hundred
    events the log fills the pipe and the Mini blocks, so it is not used here.)
    """
    root: pathlib.Path = tmp_path_factory.mktemp("fuzz-mini")
    (root / "resolver.json").write_text(json.dumps(resolver_config()))
    port = free_port()
    command = pathlib.Path(sys.executable).with_name("snowplow-mini")
    args = ["local", "--port", str(port), "--iglu", str(root / "resolver.json")]
    process = ManagedProcess("local-mini", [str(command), *args], log_path=root / "mini.log")
    mini = LocalMini(url=f"http://127.0.0.1:{port}", process=process)
    process.start()
    try:
        wait_until(mini.counts, timeout_seconds=60, what="the local Mini's /micro/all")
        yield mini
    finally:
        process.stop()


def send(mini: LocalMini, request: urllib.request.Request) -> int:
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            response.read()
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)


def assert_outcomes(mini: LocalMini, request: urllib.request.Request, expected: int) -> None:
    """Send; a 2xx must turn into ``expected`` good events or bad rows, a 4xx into none."""
    before = mini.counts()["total"]

    status = send(mini, request)

    assert status < 500, f"{request.method} {request.full_url[:200]} answered {status}"
    assert mini.process.is_running(), "the local Mini died"
    produced = expected if 200 <= status < 300 else 0
    deadline = time.monotonic() + OUTCOME_SECONDS
    while (total := mini.counts()["total"]) < before + produced:
        assert time.monotonic() < deadline, (
            f"{request.method} {request.full_url[:200]} answered {status}: "
            f"{total - before} of {produced} events came out within {OUTCOME_SECONDS} s"
        )
        time.sleep(0.02)
    assert total == before + produced, f"{total - before} events came out, {produced} expected"


@FUZZ_SETTINGS
@given(query=st.lists(st.tuples(field_names, st.text(max_size=40)), max_size=10), head=headers)
def test_any_query_string_ends_as_one_good_or_bad_event(
    local_mini: LocalMini, query: list[tuple[str, str]], head: dict[str, str]
) -> None:
    url = f"{local_mini.url}/i?{urllib.parse.urlencode(query)}"

    assert_outcomes(local_mini, urllib.request.Request(url, headers=head), expected=1)


@FUZZ_SETTINGS
@given(batch=st.lists(events(), min_size=1, max_size=5), head=headers)
def test_each_event_of_a_post_ends_as_good_or_bad(
    local_mini: LocalMini, batch: list[dict[str, str]], head: dict[str, str]
) -> None:
    body = json.dumps({"schema": PAYLOAD_DATA, "data": batch}).encode()
    request = urllib.request.Request(
        local_mini.url + TP2,
        data=body,
        headers={**head, "Content-Type": "application/json; charset=utf-8"},
    )

    assert_outcomes(local_mini, request, expected=len(batch))


@FUZZ_SETTINGS
@given(
    body=st.one_of(
        st.binary(max_size=300),
        st.builds(lambda value: json.dumps(value).encode(), json_values),
        st.builds(lambda value: json.dumps(value).encode(), self_describing),
    ),
    content_type=st.sampled_from(
        ["application/json", "application/json; charset=utf-8", "text/plain", "", "a/b; c=d"]
    ),
)
def test_any_post_body_ends_as_one_bad_row_or_its_events(
    local_mini: LocalMini, body: bytes, content_type: str
) -> None:
    request = urllib.request.Request(
        local_mini.url + TP2, data=body, headers={"Content-Type": content_type}
    )

    assert_outcomes(local_mini, request, expected=1)
