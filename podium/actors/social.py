"""The player shard's social half: its players' friend edges (a mirror of
PostgreSQL, changed only after a commit), friend fan-out of accepted unlocks
and of passes on the boards, and the inbox. A mixin of PlayerShard; the rules
are pure (podium/core/friendship.py, podium/core/social_events.py).

Consistency of the mirrors: an edge change commits both directions in one
transaction, then each shard owning one side re-reads those edges from
PostgreSQL under its own lock, so the last read applied is never older than
the last commit. The change is acknowledged after both shards have re-read:
from the ack on, a removed or blocked friend gets none of the player's events."""
from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import orjson

from podium.core import friendship, social_events
from podium.core.friendship import Change, FriendBook, Op, Outcome, Pair
from podium.core.routing import shard_of
from podium.persistence import friends
from podium.persistence.db import connection
from podium.settings import Settings
from podium.transport import directory
from podium.transport.presence import PresenceView, read_forever
from podium.transport.pushes import publish
from podium.wire.errors import Blocked, FriendLimit

log = logging.getLogger(__name__)
RELOAD_CHANNEL = "friends:reload"  # `podium friends import` publishes here: every player shard reloads
REFRESH_ATTEMPTS = 5
FANOUT_PENDING_MAX = 20_000  # (player, game) moves waiting for pass detection; past it new ones are dropped
Move = tuple[int, int]  # (points, reached_us) of a player in a game before or after a batch


def reload_channel(prefix: str) -> str:
    return f"{prefix}{RELOAD_CHANNEL}"


class Social:
    """Expects ActorBase's index, settings, pool, redis, presence, spawn, serving, ready."""

    index: int
    settings: Settings
    pool: Any
    redis: Any
    presence: PresenceView
    friend_book: FriendBook
    _friends_lock: asyncio.Lock
    _moves: dict[tuple[str, str], tuple[Move | None, Move]]
    _moves_ready: asyncio.Event
    passes_dropped: int

    if TYPE_CHECKING:  # provided by ActorBase and PlayerShard; declared here for the type checker only
        def serving(self) -> None: ...
        def spawn(self, coro: Any) -> None: ...
        async def ready(self) -> None: ...
        def _leaderboard(self, shard: int) -> Any: ...

    # ---- the mirror ---------------------------------------------------------------
    async def load_friends(self, conn: Any) -> int:
        """Recovery: every edge of this shard's players, streamed."""
        book = FriendBook()
        count = await friends.stream_shard(conn, self.index, book.load)
        self.friend_book = book
        return count

    async def follow_reloads(self) -> None:
        """Reload every edge when `podium friends import` says it changed many."""
        pubsub = self.redis.pubsub()
        try:
            await pubsub.subscribe(reload_channel(self.settings.redis_prefix))
            await read_forever(pubsub, lambda _: self.spawn(self.reload_friends()), "friend reload follower")
        finally:
            await pubsub.aclose()

    async def reload_friends(self) -> None:
        """Every edge again (after a bulk import), on a connection of its own
        with the recovery deadline: millions of edges take longer than a statement's."""
        async with self._friends_lock, connection(self.settings.database_url or "",
                                                  timeout_s=self.settings.recovery_timeout_s) as conn:
            await self.load_friends(conn)
        log.info("player shard %d: friend edges reloaded (%d)", self.index, len(self.friend_book))

    async def friends_refresh(self, pairs: list[Pair]) -> int:
        """Re-read these edges of this shard's players from PostgreSQL (after a commit elsewhere)."""
        await self.ready()
        return await self._refresh(pairs)

    async def _refresh(self, pairs: Sequence[Pair]) -> int:
        async with self._friends_lock:
            async with self.pool.acquire() as conn:
                rows = await friends.edges_between(conn, pairs)
            held = {(p, f): s for p, f, s in rows}
            self.friend_book.update((p, f, held.get((p, f))) for p, f in pairs)
        return len(pairs)

    def _mine(self, player_id: str) -> bool:
        return shard_of(player_id, self.settings.player_shards) == self.index

    # ---- changes ------------------------------------------------------------------
    async def friends_change(self, changes: list[tuple[str, str, str, bool]],
                             strict: bool = False) -> list[dict[str, object]]:
        """Apply (player, friend, op, by_server) changes in one transaction, in
        order; answered once committed and every mirror concerned has re-read.
        Each refused change is reported and the others are made; `strict`, a
        single refused change raises instead (friend_limit, blocked)."""
        await self.ready()
        todo = [Change(p, f, Op(op), bool(by_server)) for p, f, op, by_server in changes]
        for change in todo:
            friendship.validate(change)
        cap = self.settings.friends_max
        async with self.pool.acquire() as conn:
            planned = await friends.change_pairs(
                conn, [(c.player_id, c.friend_id) for c in todo],
                lambda edges, counts: friendship.plan(edges, counts, todo, cap), lambda p: p.writes,
                lambda p: shard_of(p, self.settings.player_shards))
        await self._settle_mirrors(list(planned.writes))
        if strict and len(todo) == 1:
            _raise_refusal(todo[0], planned.outcomes[0], planned.limited[0], cap)
        return [{"friend_id": c.friend_id, "outcome": o.value, **({"player_at_limit": who} if who else {})}
                for c, o, who in zip(todo, planned.outcomes, planned.limited, strict=True)]

    async def friends_replace(self, player_id: str, wanted: list[str]) -> list[dict[str, object]]:
        """A game server's new friend list for a player (friendships only)."""
        await self.ready()
        todo = friendship.replace_changes(player_id, self.friend_book.friends_of(player_id), wanted)
        if not todo:
            return []
        return await self.friends_change([(c.player_id, c.friend_id, c.op.value, True) for c in todo])

    async def _settle_mirrors(self, written: list[Pair]) -> None:
        """Every shard owning a written edge re-reads it; other shards by Ray call, retried."""
        by_shard: dict[int, list[Pair]] = defaultdict(list)
        for pair in written:
            by_shard[shard_of(pair[0], self.settings.player_shards)].append(pair)
        await asyncio.gather(*(self._refresh(pairs) if shard == self.index else self._refresh_remote(shard, pairs)
                               for shard, pairs in by_shard.items()))

    async def _refresh_remote(self, shard: int, pairs: list[Pair]) -> None:
        delay = 0.2
        for attempt in range(REFRESH_ATTEMPTS):
            try:
                handle = directory.player_shard(self.settings, shard)
                await asyncio.wait_for(handle.friends_refresh.remote(pairs), self.settings.actor_call_timeout_s)
                return
            except Exception as exc:  # a restarting shard reloads every edge anyway
                log.warning("friend refresh on player shard %d failed (%r), attempt %d", shard, exc, attempt + 1)
                await asyncio.sleep(delay)
                delay *= 2

    # ---- reads --------------------------------------------------------------------
    async def friends_list(self, player_id: str, state: str | None, after: str,
                           limit: int) -> dict[str, object]:
        self.serving()
        wanted = friendship.parse_state(state)
        page = self.friend_book.listing(player_id, wanted, after, limit + 1)
        return {"player_id": player_id, "count": self.friend_book.count(player_id),
                "limit": self.settings.friends_max,
                "friends": [{"friend_id": f, "state": friendship.STATE_NAMES[s]} for f, s in page[:limit]],
                "next_after": page[limit - 1][0] if len(page) > limit else None}

    async def _friends_of(self, player_id: str) -> list[str]:
        """Channel method `friends`: a player's mutual friends (the friends board)."""
        self.serving()
        return list(self.friend_book.friends_of(str(player_id)))

    # ---- fan-out ------------------------------------------------------------------
    def friend_unlock_events(self, player_id: str, body: dict[str, object]) -> list[social_events.Event]:
        """`friend.unlocked` for the player's online friends (bounded per event)."""
        mates = self.friend_book.friends.get(player_id)
        if not mates:
            return []
        return [(f, body) for f in social_events.online_friends(mates, self.presence.holders,
                                                                self.settings.friend_fanout_max)]

    def queue_passes(self, moves: dict[tuple[str, str], tuple[Move | None, Move]]) -> None:
        """Hand a commit's score moves (players with friends) to the pass
        worker. Moves of one player in one game merge (first old, last new), so
        under load a round covers many commits; past FANOUT_PENDING_MAX waiting
        moves new ones are dropped and counted (`passes_dropped`)."""
        pending = self._moves
        for pair, (old, new) in moves.items():
            held = pending.get(pair)
            if held is not None:
                pending[pair] = (held[0], new)
            elif len(pending) < FANOUT_PENDING_MAX:
                pending[pair] = (old, new)
            else:
                self.passes_dropped += 1
        self._moves_ready.set()

    async def run_passes(self) -> None:
        """The pass worker: one round at a time, each taking every move waiting."""
        while True:
            await self._moves_ready.wait()
            self._moves_ready.clear()
            moves, self._moves = self._moves, {}
            if moves:
                await self.fan_out_passes(moves)

    async def fan_out_passes(self, moves: dict[tuple[str, str], tuple[Move | None, Move]]) -> None:
        """Ask each game's leaderboard shard which friends the players passed
        on its all-time board; store a `friend.passed_you` in each passed
        friend's inbox and push it to those online. Best effort: the scores
        themselves are durable; a lost pass event is not re-derived."""
        by_shard: dict[int, list[list[Any]]] = defaultdict(list)
        for (player_id, game_id), (old, new) in moves.items():
            mates = self.friend_book.friends.get(player_id)
            if mates:
                by_shard[shard_of(game_id, self.settings.leaderboard_shards)].append(
                    [player_id, game_id, old, new, mates])
        calls = [asyncio.wait_for(self._leaderboard(shard).call("passes", [rows, self.settings.friend_fanout_max]),
                                  self.settings.actor_call_timeout_s)  # a hung shard must not stop the worker
                 for shard, rows in by_shard.items()]
        found: list[list[Any]] = []
        for result in await asyncio.gather(*calls, return_exceptions=True):
            if isinstance(result, BaseException):
                log.warning("friend passes not computed: %r", result)
            else:
                found += result
        if not found:
            return
        at = datetime.now(UTC).isoformat()
        events = [(friend_id, social_events.passed_you(player_id, game_id, points, friend_points, at))
                  for player_id, game_id, points, friend_id, friend_points in found]
        await self.store_and_push(events)

    async def store_and_push(self, events: list[social_events.Event]) -> None:
        await store_and_push(self.pool, self.redis, self.settings, self.presence, events)

    # ---- the inbox ----------------------------------------------------------------
    async def inbox(self, player_id: str, since: int | None, limit: int) -> dict[str, object]:
        """Items after `since` (None: after the read cursor), oldest first."""
        self.serving()
        async with self.pool.acquire() as conn:
            read_upto = await friends.inbox_cursor(conn, player_id)
            rows = await friends.inbox_items(conn, player_id, read_upto if since is None else since, limit + 1,
                                             self.settings.inbox_days)
        page = rows[:limit]
        return {"player_id": player_id, "read_upto": read_upto,
                "items": [{"id": r["id"], "kind": r["kind"], "at": r["created_at"].isoformat(),
                           "event": orjson.loads(r["body"])} for r in page],
                "next_since": page[-1]["id"] if len(rows) > limit else None}

    async def inbox_mark(self, player_id: str, upto: int) -> dict[str, object]:
        self.serving()
        async with self.pool.acquire() as conn:
            return {"player_id": player_id, "read_upto": await friends.inbox_mark(conn, player_id, upto)}

    async def expire_inboxes(self) -> None:
        """Drop inbox items older than inbox_days (player shard 0 does it for everyone)."""
        async with self.pool.acquire() as conn:
            gone = await friends.inbox_expire(conn, self.settings.inbox_days)
        if gone:
            log.info("inbox: %d items older than %d days dropped", gone, self.settings.inbox_days)


async def store_and_push(pool: Any, redis: Any, settings: Settings, presence: PresenceView,
                         events: list[social_events.Event]) -> None:
    """Keep the events in their recipients' inboxes (one transaction), then
    push them, with their inbox ids, to the recipients who are online."""
    async with pool.acquire() as conn:
        rows = await friends.inbox_append(
            conn, [(to, str(body["type"]), orjson.dumps(body)) for to, body in events], settings.inbox_max)
    pushed = [(to, {**body, "inbox_id": row["id"]}) for (to, body), row in zip(events, rows, strict=True)
              if to in presence]
    if pushed:
        await publish(redis, settings.redis_prefix, presence.replicas_of, pushed)


def _raise_refusal(change: Change, outcome: Outcome, who: str, cap: int) -> None:
    if outcome is Outcome.REFUSED_LIMIT:
        raise FriendLimit(f"{who} has {cap} friends and invites, the limit; nothing changed")
    if outcome is Outcome.REFUSED_BLOCKED:
        raise Blocked(f"{change.player_id} and {change.friend_id} cannot be friends: one blocks the other")
