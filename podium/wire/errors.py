"""Domain errors raised by the actors and the core; the gateway maps them to HTTP problems or
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


class UnknownBoard(PodiumError):
    """A stat board id the game's catalog does not define, or a period it does not keep (HTTP 404)."""

    code = "unknown_board"


class UnknownSeason(PodiumError):
    """A season the stat board does not have, or none open when one was asked for (HTTP 404)."""

    code = "unknown_season"


class UnknownStat(PodiumError):
    """A stat id the game's catalog does not define (an update item's `rejected` reason, HTTP 404 on reads)."""

    code = "unknown_stat"


class WrongOperator(PodiumError):
    """A stat update whose `op` is not the stat's operator: a client that disagrees with the catalog."""

    code = "wrong_operator"


class OutOfBounds(PodiumError):
    """A stat update outside the stat's bounds (the sent value, or for `incr` the result): nothing is recorded."""

    code = "out_of_bounds"


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


class Overloaded(PodiumError):
    """A bounded queue is full: answer at once instead of waiting (HTTP 429, Retry-After)."""

    code = "overloaded"


class FriendLimit(PodiumError):
    """A friend change would give a player more edges than friends_max (HTTP 409)."""

    code = "friend_limit"


class Blocked(PodiumError):
    """One player blocks the other: no invite, no friendship (HTTP 403)."""

    code = "blocked"


class Forbidden(PodiumError):
    """A credential that is valid but does not cover this player (HTTP 403)."""

    code = "forbidden"


def from_code(code: str, detail: str) -> PodiumError:
    """The domain error a code names (an answer that travelled as data), else a plain PodiumError."""
    stack: list[type[PodiumError]] = [PodiumError]
    while stack:
        cls = stack.pop()
        if cls.code == code:
            return cls(detail)
        stack += cls.__subclasses__()
    return PodiumError(detail)
