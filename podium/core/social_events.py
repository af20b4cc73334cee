"""The events friends and boards produce for a player, as pure functions:
their push and inbox bodies, the friends an event reaches, and which players
fell out of a board's top N. Ray-free and I/O-free (the shells in
podium/actors/social.py and podium/actors/leaderboard_shard.py send and store them)."""
from __future__ import annotations

from collections.abc import Container, Sequence

Event = tuple[str, dict[str, object]]  # (recipient, body)

FRIEND_UNLOCKED = "friend.unlocked"
FRIEND_PASSED_YOU = "friend.passed_you"
RANK_LOST_TOP = "rank.lost_top"
INBOX_KINDS = (FRIEND_PASSED_YOU, RANK_LOST_TOP)  # what is kept for a player who was away


def online_friends(friends: Sequence[str], online: Container[str], most: int) -> list[str]:
    """The friends an event is pushed to: those online, at most `most` (bounded per event)."""
    out = []
    for friend in friends:
        if friend in online:
            out.append(friend)
            if len(out) == most:
                break
    return out


def unlocked(friend_id: str, game_id: str, achievement_id: str, points: int, game_points: int,
             at: str) -> dict[str, object]:
    return {"type": FRIEND_UNLOCKED, "friend_id": friend_id, "game_id": game_id, "achievement_id": achievement_id,
            "points": points, "game_points": game_points, "at": at}


def passed_you(friend_id: str, game_id: str, their_points: int, your_points: int, at: str) -> dict[str, object]:
    return {"type": FRIEND_PASSED_YOU, "friend_id": friend_id, "game_id": game_id, "points": their_points,
            "your_points": your_points, "at": at}


def lost_top(game_id: str, top: int, rank: int | None, points: int | None, at: str) -> dict[str, object]:
    return {"type": RANK_LOST_TOP, "game_id": game_id, "top": top, "rank": rank, "points": points, "at": at}


class TopWatch:
    """The players each watched board had in its top N when last looked at;
    `dropped` says who is no longer there. A board seen for the first time
    (also after a restart) reports nobody: a loss is only ever one it saw.
    `may_change` spares the look: a board with N entries whose N-th has more
    points than the best update to it cannot have lost anyone (a newcomer
    with equal points reached them later, so ranks below), unless an update
    was for a player in its top (`holds`): a score can fall (a `set` or a
    negative `incr` stat board), and one that falls out lets another in."""

    def __init__(self, n: int) -> None:
        self.n = n
        self._tops: dict[str, frozenset[str]] = {}
        self._floor: dict[str, int | None] = {}  # points of the N-th entry; None while fewer than N

    def may_change(self, board: str, best_points: int) -> bool:
        if board not in self._tops:
            return True
        floor = self._floor[board]
        return floor is None or best_points >= floor

    def holds(self, board: str, player_id: str) -> bool:
        """Whether the player was in the board's top N when last looked at."""
        top = self._tops.get(board)
        return top is not None and player_id in top

    def dropped(self, board: str, top: Sequence[tuple[str, int]]) -> list[str]:
        """`top`: the board's first N (player, points) in rank order."""
        now = frozenset(player for player, _ in top)
        before = self._tops.get(board)
        self._tops[board] = now
        self._floor[board] = top[self.n - 1][1] if len(top) >= self.n else None
        if before is None:
            return []
        return sorted(before - now)

    def forget(self, board: str) -> None:
        self._tops.pop(board, None)
        self._floor.pop(board, None)
