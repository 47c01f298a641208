"""The NSQ wire formats and limits, without a socket."""

from __future__ import annotations

import struct

import pytest

from snowplow_pipeline import nsq, topics


def test_mpub_body_prefixes_count_and_each_length() -> None:
    body = nsq.encode_mpub([b"a\nb", b"\x00"])

    assert (
        body
        == struct.pack(">i", 2) + struct.pack(">i", 3) + b"a\nb" + struct.pack(">i", 1) + b"\x00"
    )


def test_batches_stay_within_the_body_limit_and_keep_order() -> None:
    messages = [bytes([i]) * 10 for i in range(10)]  # 14 bytes each in the body

    batches = list(nsq.split_batches(messages, max_body_bytes=4 + 3 * 14))

    assert [len(batch) for batch in batches] == [3, 3, 3, 1]
    assert [m for batch in batches for m in batch] == messages
    assert all(len(nsq.encode_mpub(batch)) <= 4 + 3 * 14 for batch in batches)


def test_message_over_the_limit_is_refused_naming_size_and_limit() -> None:
    with pytest.raises(nsq.MessageTooLargeError) as caught:
        nsq.check_messages([b"ok", b"x" * 101], max_message_bytes=100)

    assert str(caught.value) == "messages[1] is 101 bytes, the NSQ message limit is 100 bytes"
    assert (caught.value.size_bytes, caught.value.limit_bytes) == (101, 100)
    assert isinstance(caught.value, topics.PublishError)


def test_empty_message_is_refused_as_nsqd_would() -> None:
    with pytest.raises(nsq.MessageRejectedError, match=r"messages\[0\] is empty"):
        nsq.check_messages([b""], max_message_bytes=100)


def test_publisher_refuses_a_body_limit_that_cannot_hold_one_message() -> None:
    with pytest.raises(ValueError, match="expected at least max_message_bytes"):
        nsq.NsqPublisher(http_address="127.0.0.1:1", max_message_bytes=100, max_body_bytes=107)


def test_message_frame_decodes_time_attempts_id_and_body() -> None:
    frame = struct.pack(">qH", 1_700_000_000_000_000_000, 3) + b"0123456789abcdef" + b"a\nb"

    message = nsq.decode_message(frame)

    assert message == nsq.Message(
        id=b"0123456789abcdef", attempts=3, timestamp_ns=1_700_000_000_000_000_000, body=b"a\nb"
    )


def test_commands_end_with_newline_and_carry_a_sized_body() -> None:
    assert nsq.encode_command(b"FIN", b"0123456789abcdef") == b"FIN 0123456789abcdef\n"
    assert nsq.encode_command(b"IDENTIFY", body=b"{}") == b"IDENTIFY\n\x00\x00\x00\x02{}"


@pytest.mark.parametrize(
    ("address", "expected"),
    [("127.0.0.1:4150", ("127.0.0.1", 4150)), ("[::1]:4150", ("::1", 4150))],
    ids=["ipv4", "ipv6"],
)
def test_addresses_split_into_host_and_port(address: str, expected: tuple[str, int]) -> None:
    assert nsq.split_address(address) == expected


def test_address_without_port_is_refused() -> None:
    with pytest.raises(ValueError, match="expected host:port"):
        nsq.split_address("nsqd")
