"""The chunked transfer coding of HTTP/1.1, decoded as it arrives: each byte is read once.

A Dechunker consumes the received bytes of a response buffer in place (what it has decoded
is cut out of the buffer), so a server that sends a body as a million one-byte chunks costs
one pass, not one pass per packet, and the buffer never holds more than a partial chunk
line. A chunk-size line is bounded: a server sending one for ever is a protocol error, not
a buffer that grows until the timeout; so is the number of chunks.
"""

from __future__ import annotations

from typing import Final

MAX_SIZE_LINE: Final = 1024  # bytes of one chunk-size line, extensions included
# chunks in one body: 1 MiB in 64-byte chunks. A body of a million one-byte chunks would
# cost seconds of CPU inside the loop's callbacks, past the check's own timeout.
MAX_CHUNKS: Final = 16384


class ChunkError(ValueError):
    """The chunked body is malformed."""


def _size(line: bytes) -> int:
    text = line.split(b";", 1)[0].strip()
    if not text or any(c not in b"0123456789abcdefABCDEF" for c in text):
        raise ChunkError(f"malformed chunk size {line[:20]!r}")
    return int(text, 16)


class Dechunker:
    """Decodes the chunked body that starts at `start` in a growing buffer, up to `limit` bytes."""

    __slots__ = ("_chunks", "_left", "_pos", "_skip", "body", "done", "limit")

    def __init__(self, start: int, limit: int) -> None:
        self.limit = limit
        self.body = bytearray()
        self.done = False  # the last chunk was seen, or `limit` bytes were decoded
        self._pos = start  # where the undecoded bytes begin in the buffer
        self._left = 0  # bytes of the current chunk still to come
        self._skip = 0  # bytes of the CRLF after a chunk's data still to come
        self._chunks = 0  # chunk-size lines read

    def feed(self, buf: bytearray) -> bool:
        """Decode what arrived in `buf`; return whether the body is whole. Raises ChunkError."""
        start = self._pos
        try:
            while not self.done and self._step(buf):
                pass
        finally:
            del buf[start : self._pos]  # decoded: keep only the partial rest
            self._pos = start
        return self.done

    def _step(self, buf: bytearray) -> bool:
        """Consume one piece (data, its CRLF or a size line); False when more must arrive."""
        avail = len(buf) - self._pos
        if self._left:
            take = min(avail, self._left)
            room = self.limit - len(self.body)
            self.body += buf[self._pos : self._pos + min(take, room)]
            self._pos += take
            self._left -= take
            if len(self.body) >= self.limit:
                self.done = True
            elif not self._left:
                self._skip = 2
            return take > 0
        if self._skip:
            gone = min(avail, self._skip)
            self._pos += gone
            self._skip -= gone
            return not self._skip
        eol = buf.find(b"\r\n", self._pos, self._pos + MAX_SIZE_LINE + 2)
        if eol < 0:
            if avail > MAX_SIZE_LINE:
                raise ChunkError("chunk size line too long")
            return False
        size = _size(bytes(buf[self._pos : eol]))
        self._chunks += 1
        if self._chunks > MAX_CHUNKS:
            raise ChunkError(f"more than {MAX_CHUNKS} chunks")
        self._pos = eol + 2
        self.done = size == 0  # the last chunk; trailers are not needed
        self._left = size
        return True
