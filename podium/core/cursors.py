"""Opaque keyset cursors: a JSON array, base64url without padding. What the
array holds is the caller's business (a board's sort key, a journal position);
anything this module did not produce is a BadCursor."""
from __future__ import annotations

import base64

import orjson

from podium.wire.errors import BadCursor


def encode(values: list[object]) -> str:
    return base64.urlsafe_b64encode(orjson.dumps(values)).decode().rstrip("=")


def decode(token: str, shape: tuple[type, ...]) -> list[object]:
    """The values of a token whose items have exactly these types, in order."""
    try:
        values = orjson.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    except (ValueError, TypeError) as exc:
        raise BadCursor("cursor is not one this server issued") from exc
    if (not isinstance(values, list) or len(values) != len(shape)
            or not all(isinstance(v, t) and not isinstance(v, bool) for v, t in zip(values, shape, strict=True))):
        raise BadCursor("cursor is not one this server issued")
    return values
