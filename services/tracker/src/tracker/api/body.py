"""Reading request bodies with hard limits: declared length, streamed length, inflated length."""

from __future__ import annotations

import zlib

from beckon_edge import BadContentLength, BodyTooLarge, read_limited
from starlette.requests import Request

from tracker.api.problems import Problem


async def read_body(request: Request, limit: int) -> bytes:
    """The body, inflated if gzip/deflate; 413 past `limit` bytes at any stage."""
    try:
        body = await read_limited(request.stream(), limit, request.headers.get("content-length"))
    except BadContentLength as exc:
        raise Problem(400, "bad_request", str(exc)) from None
    except BodyTooLarge:
        raise _too_large(limit) from None
    encoding = request.headers.get("content-encoding", "identity").strip().lower()
    if encoding in ("", "identity"):
        return body
    if encoding not in ("gzip", "deflate", "x-gzip"):
        raise Problem(415, "unsupported_encoding", f"Content-Encoding {encoding!r}: use gzip")
    return _inflate(body, limit)


def _inflate(body: bytes, limit: int) -> bytes:
    inflater = zlib.decompressobj(wbits=47)  # 32 + 15: gzip or zlib header, detected
    try:
        data = inflater.decompress(body, limit + 1)
    except zlib.error as exc:
        raise Problem(400, "malformed_body", f"body is not valid gzip/deflate: {exc}") from None
    if len(data) > limit or inflater.unconsumed_tail:
        raise _too_large(limit, inflated=True)
    if not inflater.eof:
        raise Problem(400, "malformed_body", "compressed body is truncated")
    return data


def _too_large(limit: int, inflated: bool = False) -> Problem:
    what = "inflated body" if inflated else "body"
    return Problem(413, "too_large", f"{what} is larger than {limit} bytes; send smaller batches")
