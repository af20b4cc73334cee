"""LeaderboardShard: the Ray actor owning the boards of the games whose stable
hash lands on it. Its checkpoint is the player shards' player_game_stats plus
their watermarks: recovery bulk-loads those and replays the journal after them."""
from __future__ import annotations

import asyncio
import gc
import logging
from datetime import UTC, datetime
from typing import Any

import ray

from podium.actors.shell import ActorBase
from podium.actors.social import store_and_push
from podium.core import social_events
from podium.core.board_reads import Encoded, Read, answer_encoded
from podium.core.friendship import passed
from podium.core.periods import PeriodClock, board_id, is_period, parse_board_id
from podium.core.player_state import GameStats, PeriodStats, PlayerBook, from_us, now_us
from podium.core.ranking import sort_key, unpack
from podium.core.routing import shard_of
from podium.core.social_events import TopWatch
from podium.core.standings import Loader, Standings, gc_paused
from podium.persistence import catalog_store, checkpoints, journal
from podium.persistence.db import connection, export_snapshot, same_snapshot
from podium.settings import Settings
from podium.telemetry import metrics
from podium.transport import channel, read_wire
from podium.transport.pushes import publish
from podium.wire.errors import ShardUnavailable
from podium.wire.messages import ALL_GAMES, RankChange, ScoreUpdates

log = logging.getLogger(__name__)
RETIRE_EVERY_S = 30.0  # how often closed periods older than the previous one are dropped
METRICS_S = 5.0  # how often the shard's gauges are exported
TOPS_S = 0.5  # how often updated game boards' top N are compared with the last look (rank.lost_top)
APPLY_SLICE = 128  # updates applied between yields to the event loop: a read waits at most one slice (~5 ms)


@ray.remote(max_restarts=-1, max_task_retries=0, num_cpus=0)
class LeaderboardShard(ActorBase):
    def __init__(self, index: int, settings: Settings) -> None:
        super().__init__(index, settings)
        self._fresh_state()

    def _fresh_state(self) -> None:
        self.standings = Standings()
        self.clock = PeriodClock(self.settings.period_reset_hour)
        self.tops = TopWatch(self.settings.inbox_top_n)
        self._tops_due: dict[str, int] = {}

    async def recover(self) -> None:
        self.standings = Standings()  # from nothing, also after a failed attempt
        self.tops = TopWatch(self.settings.inbox_top_n)  # a restart reports no loss it did not see
        loader = Loader(self.standings)
        owns_totals = shard_of(ALL_GAMES, self.settings.leaderboard_shards) == self.index
        with gc_paused():  # a million long-lived entries would trigger the cyclic GC over and over
            async with connection(self.settings.database_url or "",
                                  timeout_s=self.settings.recovery_timeout_s) as conn, \
                    conn.transaction(isolation="repeatable_read", readonly=True):
                await conn.execute("SET LOCAL work_mem = '256MB'")  # recovery sorts in memory, not on disk
                games = sorted({r["game_id"] for r in await catalog_store.read_catalog(conn)
                                if shard_of(r["game_id"], self.settings.leaderboard_shards) == self.index})
                watermarks = await checkpoints.read_watermarks(conn, "player", self.settings.player_shards)
                # The totals stream on a second connection: PostgreSQL sums them while the games stream.
                snapshot = await export_snapshot(conn) if owns_totals else None
                entries = sum(await asyncio.gather(
                    checkpoints.stream_game_scores(conn, games, loader.add),
                    *([self._load_totals(snapshot, loader)] if snapshot else [])))
                live = self.clock.live_starts(now_us())
                in_periods = await checkpoints.stream_period_scores(
                    conn, games, [(k, from_us(s)) for k, s in live],
                    lambda rows: loader.add((p, board_id(g, k, s), r, pts, at, seq)
                                            for p, g, k, s, r, pts, at, seq in rows))
                tail = [row for p in range(self.settings.player_shards)
                        for row in await journal.replay(conn, shard=p, after_seq=watermarks.get(p, 0),
                                                        game_ids=None if owns_totals else games)]
                tail_players = sorted({r["player_id"] for r in tail})
                tail_player_scores = await checkpoints.read_player_scores(conn, tail_players) if owns_totals else []
            loader.finish()
        mine = set(games)
        self._fold_game_tail([r for r in tail if r["game_id"] in mine])
        if owns_totals and tail:
            self._fold_totals_tail(tail, tail_player_scores)
        self.every(RETIRE_EVERY_S, self._retire_periods, "period retirement")
        self.every(METRICS_S, self._export_metrics, "metrics")
        self.every(TOPS_S, self._watch_tops, "top-N watch")
        log.info("leaderboard shard %d: %d games%s, %d entries (+%d in periods), %d journal rows replayed",
                 self.index, len(games), " + all-games board" if owns_totals else "", entries, in_periods, len(tail))

    async def _load_totals(self, snapshot: str, loader: Loader) -> int:
        async with same_snapshot(snapshot, self.settings.database_url or "",
                                 timeout_s=self.settings.recovery_timeout_s) as twin:
            return await checkpoints.stream_totals(twin, ALL_GAMES, loader.add)

    async def _export_metrics(self) -> None:
        periods = sum(len(p) for b, p in self.standings.entries.items() if is_period(b))
        metrics.gauge("podium_board_entries", len(self.standings) - periods, shard=str(self.index))

    async def _retire_periods(self) -> None:
        now = now_us()
        for board in list(self.standings.entries):
            _, kind, start = parse_board_id(board)
            if start is not None and not self.clock.is_live(kind, start, now):
                self.standings.drop(board)

    def _fold_game_tail(self, tail: list[Any]) -> None:
        """Fold the journal tail onto the checkpointed scores it touches, exactly
        as the player shards do, then apply those as ordinary versioned updates."""
        book = PlayerBook(self.clock)
        now = now_us()
        live = self.clock.live_starts(now)
        for player_id, game_id in {(r["player_id"], r["game_id"]) for r in tail}:
            held = self.standings.entries.get(game_id, {}).get(player_id)
            if held is not None:
                key, region, version = held
                _, points, reached = unpack(key)
                book.load(player_id, game_id, GameStats(points, 0, 0, 0, reached, version), region)
            for kind, start in live:
                period = self.standings.entries.get(board_id(game_id, kind, start), {}).get(player_id)
                if period is not None:
                    _, points, reached = unpack(period[0])
                    book.load_period(player_id, game_id, kind, start, PeriodStats(points, 0, reached, period[2]))
        self.standings.apply(book.score_updates(book.replay(tail), now), track=())

    def _fold_totals_tail(self, tail: list[Any], player_scores: list[Any]) -> None:
        """Totals of the players the tail touches: their checkpointed games plus the tail."""
        book = PlayerBook()
        for r in player_scores:
            book.load(r["player_id"], r["game_id"], GameStats(r["points"], 0, 0, 0, r["reached_us"], r["last_seq"]),
                      r["region"])
        self.standings.apply(book.total_updates({p for p, _ in book.replay(tail)}), track=())

    async def apply(self, updates: ScoreUpdates) -> int:
        """Apply absolute scores from a player shard; pushes rank changes. While
        recovering it refuses at once: the player shard resends within a second."""
        self.serving()
        changes: list[RankChange] = []
        for part in updates.slices(APPLY_SLICE):
            # Live rank pushes are for all-time boards; period ranks are read on demand.
            changes += self.standings.apply(part, track=self.presence, ranked=_all_time)
            if len(part) == APPLY_SLICE:
                await asyncio.sleep(0)  # let waiting reads in
        if changes:
            self.spawn(publish(self.redis, self.settings.redis_prefix, self.presence.replicas_of,
                               [_rank_event(c) for c in changes]))
        best = self._tops_due  # board -> the most points an update brought to it since the last look
        for game_id, points in zip(updates.game_ids, updates.points, strict=True):
            if best.get(game_id, -1) < points:
                best[game_id] = points
        return len(changes)

    async def _watch_tops(self) -> None:
        """Every TOPS_S, the top N of each game board updated since the last
        look (and able to have changed): whoever fell out gets `rank.lost_top`
        (inbox, and a push if online), all in one inbox transaction. Off the
        apply path, so a burst of deliveries costs one look per board."""
        due, self._tops_due = self._tops_due, {}
        boards = [g for g, points in due.items()
                  if g != ALL_GAMES and not is_period(g) and self.tops.may_change(g, points)]
        at = datetime.now(UTC).isoformat()
        events: list[social_events.Event] = []
        for watched in boards:
            board = self.standings.board(watched)
            if board is None:
                continue
            top, _, _ = board.page(self.tops.n)
            for player_id in self.tops.dropped(watched, [(r.player_id, r.points) for r in top]):
                standing = self.standings.standing(watched, player_id)
                events.append((player_id, social_events.lost_top(watched, self.tops.n, standing.rank,
                                                                 standing.points, at)))
        if events:
            await store_and_push(self.pool, self.redis, self.settings, self.presence, events)

    async def passes(self, rows: list[list[Any]], most: int) -> list[list[Any]]:
        """Channel method `passes`: for each [player, game, old, new, friends]
        (old and new are [points, reached_us]; old None when the player had no
        score), the friends the player moved ahead of on the game's all-time
        board, at most `most` per row: [player, game, points, friend, friend's points]."""
        self.serving()
        out: list[list[Any]] = []
        for player_id, game_id, old, new, mates in rows:
            held = self.standings.entries.get(game_id)
            if not held:
                continue
            keys = [(f, entry[0]) for f in mates if (entry := held.get(f)) is not None]
            old_key = None if old is None else sort_key(player_id, old[0], old[1])
            for friend_id in passed(old_key, sort_key(player_id, new[0], new[1]), keys)[:most]:
                out.append([player_id, game_id, new[0], friend_id, unpack(held[friend_id][0])[1]])
        return out

    async def read_address(self) -> tuple[str, int]:
        """Where this shard's read channel listens (podium/transport/read_wire.py): the
        gateway sends its reads there, not as Ray calls. Answered at once, also
        while recovering (reads then get `unavailable`); a restarted shard
        listens on a new port, which the gateway asks for again."""
        return await self.listen("reads", lambda host: read_wire.serve(host, 0, self._answer_reads, self.channel_key))

    async def apply_address(self) -> tuple[str, int]:
        """Where this shard takes score updates from the player shards
        (podium/transport/channel.py calls: `apply` with ScoreUpdates columns)."""
        return await self.listen("apply", lambda host: channel.serve_calls(
            host, 0, {"apply": self._apply_columns, "passes": self._passes_call}, self.channel_key))

    async def _passes_call(self, payload: list[Any]) -> list[list[Any]]:
        return await self.passes(payload[0], int(payload[1]))

    async def _apply_columns(self, columns: list[list[Any]]) -> int:
        return await self.apply(ScoreUpdates(*columns))

    async def _answer_reads(self, reads: list[Read]) -> list[Encoded]:
        """A batch of reads from the channel. A read takes a board id: a game id
        (all-time) or a period board (podium/core/periods)."""
        try:
            self.serving()
        except ShardUnavailable as exc:
            return [(False, (exc.code, str(exc)))] * len(reads)
        return answer_encoded(self.standings, reads)

    async def status(self) -> dict[str, object]:
        await self.ready()
        periods = sum(len(p) for b, p in self.standings.entries.items() if is_period(b))
        return {"shard": self.index, "entries": len(self.standings) - periods, "period_entries": periods,
                "boards": len(self.standings.boards), "online": len(self.presence), "gc_frozen": gc.get_freeze_count(),
                "node": ray.util.get_node_ip_address(), "node_id": ray.get_runtime_context().get_node_id(),
                "recovered_in_s": self.recovered_in_s, "loop": self.loop_lag.status()}


def _all_time(board: str) -> bool:
    return not is_period(board)


def _rank_event(c: RankChange) -> tuple[str, dict[str, object]]:
    return c.player_id, {"type": "rank.changed", "game_id": c.game_id, "board": c.board, "old_rank": c.old_rank,
                         "new_rank": c.new_rank, "points": c.points, "total": c.total}
