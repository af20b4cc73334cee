"""The friend graph as pure logic: edge states, what a change does to them
(invite, accept, remove, block; a game server's word makes friends at once),
the per-player cap, the in-memory mirror a player shard keeps of its players'
edges, and who a score move passed. Ray-free and I/O-free.

An edge is directed and stored once per direction (migrations/006_friends.sql):
a friendship is A->B and B->A in FRIEND; an invite is A->B INVITED plus B->A
INVITED_BY; a block is the blocker's row only (BLOCKED), the other direction
removed. Every edge but a block counts toward the cap, on each side."""
from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from sys import intern

from podium.core.ranking import SortKey
from podium.wire.errors import InvalidRequest

FRIEND, INVITED, INVITED_BY, BLOCKED = 0, 1, 2, 3
STATE_NAMES = {FRIEND: "friend", INVITED: "invited", INVITED_BY: "invited_by", BLOCKED: "blocked"}
STATE_OF = {name: state for state, name in STATE_NAMES.items()}
Pair = tuple[str, str]  # (player_id, friend_id): one direction


class Op(StrEnum):
    ADD = "add"  # a player: invite, or accept an invite; a game server: friends at once
    REMOVE = "remove"  # unfriend, cancel or decline an invite, or lift one's own block
    BLOCK = "block"


class Outcome(StrEnum):
    FRIENDS = "friends"
    INVITED = "invited"
    REMOVED = "removed"
    BLOCKED = "blocked"
    UNCHANGED = "unchanged"
    REFUSED_BLOCKED = "refused_blocked"  # one side blocks the other
    REFUSED_LIMIT = "refused_friend_limit"  # a side would pass the cap


@dataclass(frozen=True, slots=True)
class Change:
    player_id: str
    friend_id: str
    op: Op
    by_server: bool  # an API key vouches for both players (ADD makes friends without an invite)


@dataclass(slots=True)
class Planned:
    writes: dict[Pair, int | None]  # edges to write (None: delete), in the order first touched
    outcomes: list[Outcome]  # one per change, in order
    limited: list[str]  # per change: the player at the cap when the outcome is REFUSED_LIMIT, else ""


def validate(change: Change) -> None:
    if change.player_id == change.friend_id:
        raise InvalidRequest("a player cannot befriend or block themselves")


def plan(edges: Mapping[Pair, int], counts: Mapping[str, int], changes: Sequence[Change],
         max_edges: int) -> Planned:
    """Apply `changes` in order to the current `edges` (both directions of every
    pair the changes touch; absent means none) and `counts` (each player's edges
    that count toward the cap). A refused change writes nothing."""
    state: dict[Pair, int | None] = dict(edges)
    count = dict(counts)
    writes: dict[Pair, int | None] = {}
    outcomes: list[Outcome] = []
    limited: list[str] = []

    def put(pair: Pair, new: int | None) -> None:
        old = state.get(pair)
        if old == new:
            return
        delta = (new is not None and new != BLOCKED) - (old is not None and old != BLOCKED)
        count[pair[0]] = count.get(pair[0], 0) + delta
        state[pair] = new
        writes[pair] = new

    for change in changes:
        validate(change)
        a, b = change.player_id, change.friend_id
        ab, ba = state.get((a, b)), state.get((b, a))
        target: tuple[int | None, int | None]
        outcome: Outcome
        if change.op is Op.ADD:
            if ba == BLOCKED or (ab == BLOCKED and change.by_server):
                outcomes.append(Outcome.REFUSED_BLOCKED)
                limited.append("")
                continue
            if ab == FRIEND:
                target, outcome = (FRIEND, FRIEND), Outcome.UNCHANGED
            elif change.by_server or ab == INVITED_BY:
                target, outcome = (FRIEND, FRIEND), Outcome.FRIENDS
            elif ab == INVITED:
                target, outcome = (INVITED, INVITED_BY), Outcome.UNCHANGED
            else:  # none, or lifting one's own block to invite
                target, outcome = (INVITED, INVITED_BY), Outcome.INVITED
        elif change.op is Op.REMOVE:
            target = (None, BLOCKED if ba == BLOCKED else None)
            outcome = Outcome.UNCHANGED if ab is None and ba in (None, BLOCKED) else Outcome.REMOVED
        else:
            target = (BLOCKED, BLOCKED if ba == BLOCKED else None)
            outcome = Outcome.UNCHANGED if ab == BLOCKED else Outcome.BLOCKED
        over = [p for p, old, new in ((a, ab, target[0]), (b, ba, target[1]))
                if _counts(new) > _counts(old) and count.get(p, 0) + 1 > max_edges]
        if over:
            outcomes.append(Outcome.REFUSED_LIMIT)
            limited.append(over[0])
            continue
        put((a, b), target[0])
        put((b, a), target[1])
        outcomes.append(outcome)
        limited.append("")
    return Planned(writes, outcomes, limited)


def _counts(state: int | None) -> bool:
    return state is not None and state != BLOCKED


def replace_changes(player_id: str, current_friends: Iterable[str], wanted: Iterable[str]) -> list[Change]:
    """A game server's new friend list for a player: removals first (they free room under the cap)."""
    now, want = set(current_friends), set(wanted)
    want.discard(player_id)
    return ([Change(player_id, f, Op.REMOVE, True) for f in sorted(now - want)]
            + [Change(player_id, f, Op.ADD, True) for f in sorted(want - now)])


class FriendBook:
    """A player shard's mirror of its own players' edges. Mutual friends are a
    tuple per player (compact: ~8 bytes per edge; fan-out walks it); invites and
    blocks, rarer, a dict per player. Friend ids are interned, so a friend who
    appears in many lists is one string."""

    def __init__(self) -> None:
        self.friends: dict[str, tuple[str, ...]] = {}
        self.others: dict[str, dict[str, int]] = {}

    def __len__(self) -> int:
        return sum(len(f) for f in self.friends.values()) + sum(len(o) for o in self.others.values())

    def friends_of(self, player_id: str) -> tuple[str, ...]:
        return self.friends.get(player_id, ())

    def state(self, player_id: str, friend_id: str) -> int | None:
        if friend_id in self.friends.get(player_id, ()):
            return FRIEND
        return self.others.get(player_id, {}).get(friend_id)

    def load(self, rows: Iterable[tuple[str, str, int]]) -> None:
        """Add (player, friend, state) rows; for recovery, onto an empty book."""
        grouped: dict[str, list[str]] = {}
        for player_id, friend_id, state in rows:
            if state == FRIEND:
                grouped.setdefault(intern(player_id), []).append(intern(friend_id))
            else:
                self.others.setdefault(intern(player_id), {})[intern(friend_id)] = state
        for player_id, friends in grouped.items():
            self.friends[player_id] = tuple(sorted({*self.friends.get(player_id, ()), *friends}))

    def update(self, rows: Iterable[tuple[str, str, int | None]]) -> None:
        """Set these edges to their current state (None: gone); one rebuild per player."""
        by_player: dict[str, dict[str, int | None]] = {}
        for player_id, friend_id, state in rows:
            by_player.setdefault(player_id, {})[friend_id] = state
        for player_id, edges in by_player.items():
            mutual = set(self.friends.get(player_id, ()))
            other = self.others.get(player_id, {})
            for friend_id, state in edges.items():
                mutual.discard(friend_id)
                other.pop(friend_id, None)
                if state == FRIEND:
                    mutual.add(intern(friend_id))
                elif state is not None:
                    other[intern(friend_id)] = state
            player = intern(player_id)
            if mutual:
                self.friends[player] = tuple(sorted(mutual))
            else:
                self.friends.pop(player, None)
            if other:
                self.others[player] = other
            else:
                self.others.pop(player, None)

    def listing(self, player_id: str, state: int | None, after: str, limit: int) -> list[tuple[str, int]]:
        """(friend, state) in friend-id order after `after`, at most `limit`; one state or all."""
        edges = [(f, FRIEND) for f in self.friends.get(player_id, ())]
        edges += list(self.others.get(player_id, {}).items())
        return sorted(e for e in edges if e[0] > after and (state is None or e[1] == state))[:limit]

    def count(self, player_id: str) -> int:
        """Edges that count toward the cap."""
        return len(self.friends.get(player_id, ())) + sum(
            1 for s in self.others.get(player_id, {}).values() if s != BLOCKED)


def passed(old_key: SortKey | None, new_key: SortKey, friend_keys: Iterable[tuple[str, SortKey]]) -> list[str]:
    """The friends a player moved ahead of on one board: ranked ahead of the
    player's old key (or anywhere, if the player had no score) and behind the new one."""
    if old_key is None:
        return [f for f, key in friend_keys if new_key < key]
    return [f for f, key in friend_keys if new_key < key < old_key]


def parse_state(name: str | None) -> int | None:
    if name is None:
        return None
    if name not in STATE_OF:
        raise InvalidRequest(f"state is one of {', '.join(STATE_OF)}")
    return STATE_OF[name]
