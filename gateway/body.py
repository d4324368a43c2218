"""The request body on its way upstream: streamed as it arrives, never read whole, except a chunked body under a
size limit, which (as in Kong's request-size-limiting) must be read to be measured."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from gateway.plugins import SizeLimit

BLOCK_SIZE = 64 * 1024


class BodyTooLarge(Exception):
    def __init__(self, expect_continue: bool):
        super().__init__("Request size limit exceeded")
        # Kong answers 417 instead of 413 when the client waits for 100-continue.
        self.status = 417 if expect_continue else 413


class IncompleteBody(Exception):
    """The client sent less than its Content-Length."""


@dataclass(frozen=True)
class RequestBody:
    content: Iterator[bytes] | bytes | None
    # None means chunked transfer encoding upstream.
    length: int | None


NO_BODY = RequestBody(None, None)


def request_body(environ: dict, size_limit: SizeLimit | None) -> RequestBody:
    stream = environ["wsgi.input"]
    declared = environ.get("CONTENT_LENGTH")
    if declared and declared.isdigit():
        length = int(declared)
        if size_limit is not None and length > size_limit.max_bytes:
            raise BodyTooLarge(_expects_continue(environ))
        if length == 0:
            return RequestBody(None, 0)
        return RequestBody(_exactly(stream, length), length)
    if "chunked" not in environ.get("HTTP_TRANSFER_ENCODING", "").lower():
        return NO_BODY
    if size_limit is None:
        return RequestBody(_until_end(stream), None)
    data = _at_most(stream, size_limit.max_bytes + 1)
    if len(data) > size_limit.max_bytes:
        raise BodyTooLarge(_expects_continue(environ))
    return RequestBody(data, len(data))


def _expects_continue(environ: dict) -> bool:
    return environ.get("HTTP_EXPECT", "").lower() == "100-continue"


def _exactly(stream, length: int) -> Iterator[bytes]:
    remaining = length
    while remaining:
        block = stream.read(min(BLOCK_SIZE, remaining))
        if not block:
            raise IncompleteBody()
        remaining -= len(block)
        yield block


def _until_end(stream) -> Iterator[bytes]:
    while block := stream.read(BLOCK_SIZE):
        yield block


def _at_most(stream, limit: int) -> bytes:
    blocks = []
    size = 0
    while size < limit and (block := stream.read(min(BLOCK_SIZE, limit - size))):
        blocks.append(block)
        size += len(block)
    return b"".join(blocks)
