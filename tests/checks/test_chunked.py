"""The chunked decoder: fed in any pieces it decodes the same body, and bounds what it holds."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from checks._chunked import MAX_CHUNKS, MAX_SIZE_LINE, ChunkError, Dechunker


def encode(pieces: list[bytes], ext: bytes = b"") -> bytes:
    out = b"".join(b"%x%s\r\n%s\r\n" % (len(p), ext, p) for p in pieces if p)
    return out + b"0\r\n\r\n"


def feed_in(data: bytes, cuts: list[int], limit: int = 1 << 20) -> tuple[Dechunker, bytearray]:
    d, buf = Dechunker(0, limit), bytearray()
    last = 0
    for cut in [*sorted(cuts), len(data)]:
        buf += data[last:cut]
        last = max(last, cut)
        if d.feed(buf):
            break
    return d, buf


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.binary(max_size=40), max_size=20),
    st.lists(st.integers(0, 2000), max_size=30),
    st.sampled_from([b"", b";name=value"]),
)
def test_any_split_decodes_the_same_body(pieces, cuts, ext):
    d, buf = feed_in(encode(pieces, ext), cuts)
    assert d.done
    assert bytes(d.body) == b"".join(pieces)
    assert len(buf) <= MAX_SIZE_LINE + 2  # what was decoded is no longer held


def test_the_body_stops_at_the_limit():
    d, _ = feed_in(encode([b"a" * 100, b"b" * 100]), [], limit=150)
    assert (d.done, bytes(d.body)) == (True, b"a" * 100 + b"b" * 50)


def test_an_endless_size_line_is_an_error_not_a_growing_buffer():
    d, buf = Dechunker(0, 1 << 20), bytearray()
    for _ in range(MAX_SIZE_LINE // 64):
        buf += b"f" * 64
        assert d.feed(buf) is False  # not yet too long: wait for more
    buf += b"f" * 64
    with pytest.raises(ChunkError, match="chunk size line too long"):
        d.feed(buf)
    assert len(buf) == MAX_SIZE_LINE + 64


def test_too_many_chunks_is_an_error():
    data = b"1\r\nx\r\n" * (MAX_CHUNKS + 1)
    with pytest.raises(ChunkError, match=f"more than {MAX_CHUNKS} chunks"):
        feed_in(data, [])


@pytest.mark.parametrize("line", [b"zz", b"", b"-1", b"0x10", b"1 0", b"+5"])
def test_a_malformed_size_is_an_error(line):
    with pytest.raises(ChunkError, match="malformed chunk size"):
        feed_in(line + b"\r\nabc\r\n0\r\n\r\n", [])
