"""The collector payload's Thrift bytes, written straight from the dataclass, are exactly the
bytes of thriftpy2's generated ``CollectorPayload`` struct, for any payload, valid UTF-8 or not."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from thriftpy2.utils import serialize as thrift_serialize

from snowplow_pipeline import payloads

# Text as aiohttp may hand it over: any code point, lone surrogates included.
any_text = st.text(st.characters(codec=None, exclude_categories=()), max_size=40)
optional_text = st.none() | any_text


def generated_struct_bytes(payload: payloads.CollectorPayload) -> bytes:
    """The reference: thriftpy2 writing its own generated struct."""
    return thrift_serialize(payloads.generated_struct(payload), payloads._protocol)


@settings(max_examples=300)
@given(
    ip_address=any_text,
    timestamp_ms=st.integers(min_value=0, max_value=2**63 - 1),
    user_agent=optional_text,
    referer_uri=optional_text,
    path=optional_text,
    querystring=optional_text,
    body=optional_text,
    headers=st.lists(any_text, max_size=4),
    content_type=optional_text,
    hostname=optional_text,
    network_user_id=optional_text,
)
def test_serialized_payload_is_byte_for_byte_the_generated_structs(
    ip_address: str,
    timestamp_ms: int,
    user_agent: str | None,
    referer_uri: str | None,
    path: str | None,
    querystring: str | None,
    body: str | None,
    headers: list[str],
    content_type: str | None,
    hostname: str | None,
    network_user_id: str | None,
) -> None:
    payload = payloads.CollectorPayload(
        ip_address=ip_address,
        timestamp_ms=timestamp_ms,
        collector="test-collector",
        user_agent=user_agent,
        referer_uri=referer_uri,
        path=path,
        querystring=querystring,
        body=body,
        headers=headers,
        content_type=content_type,
        hostname=hostname,
        network_user_id=network_user_id,
    )

    encoded = payloads.serialize(payload)

    assert encoded == generated_struct_bytes(payload)
    assert payloads.deserialize(encoded).timestamp_ms == timestamp_ms


def test_empty_headers_are_left_out_as_the_generated_struct_leaves_them() -> None:
    payload = payloads.CollectorPayload(ip_address="192.0.2.1", timestamp_ms=1, collector="c")

    assert payloads.serialize(payload) == generated_struct_bytes(payload)
    assert payloads.deserialize(payloads.serialize(payload)).headers == []
