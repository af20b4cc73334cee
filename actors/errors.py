"""Domain errors raised in actors/; the gateway maps them to HTTP problems or
per-item rejected acks."""
from __future__ import annotations


class PodiumError(Exception):
    code = "error"


class UnknownGame(PodiumError):
    code = "unknown_game"


class UnknownAchievement(PodiumError):
    code = "unknown_achievement"


class UnknownPlayer(PodiumError):
    code = "unknown_player"


class InvalidRequest(PodiumError):
    """A query that is well-formed but asks for something that does not exist
    (a period of the all-games board, a history window other than 7/30/90)."""

    code = "invalid_request"


class BadCursor(PodiumError):
    code = "bad_cursor"


class LayoutMismatch(PodiumError):
    """Checkpoints were written with another shard count: resharding is offline."""

    code = "layout_mismatch"


class ShardUnavailable(PodiumError):
    """A shard is recovering or did not answer within its deadline: retry shortly (HTTP 503)."""

    code = "unavailable"
