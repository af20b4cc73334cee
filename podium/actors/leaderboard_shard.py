"""LeaderboardShard: the Ray actor owning the boards of the games whose stable
hash lands on it. Its checkpoint is the player shards' player_game_stats plus
their watermarks: recovery bulk-loads those and replays the journal after them."""
from __future__ import annotations

import asyncio
import gc
import logging
import time
from datetime import UTC, datetime
from typing import Any

import ray

from podium.actors.shell import ActorBase
from podium.actors.social import store_and_push
from podium.core import social_events
from podium.core.backoff import Backoff, run_each
from podium.core.board_order import POINTS, stat_order
from podium.core.board_reads import Encoded, Read, answer_encoded
from podium.core.catalog import Catalog, StatBoard
from podium.core.friendship import passed
from podium.core.periods import (
    SEASON,
    PeriodClock,
    board_id,
    is_period,
    parse,
    parse_board_id,
    season_board_id,
    stat_board_id,
)
from podium.core.player_state import GameStats, PeriodStats, PlayerBook, from_us, now_us
from podium.core.ranking import sort_key, unpack
from podium.core.routing import shard_of
from podium.core.seasons import Season, Seasons, final_standings
from podium.core.social_events import TopWatch
from podium.core.standings import Loader, Standings, gc_paused
from podium.core.stat_boards import SEASON_KEEP_US, StatBoardBook, board_stats, unknown_stat_boards
from podium.core.stat_book import StatBook
from podium.persistence import catalog_store, checkpoints, journal, stat_boards
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
TOP_MEMBER_MOVED = 2**63  # a board's best update when one was for a player in its top N: always looked at
CATALOG_POLL_S = 2.0  # a new or changed stat board's order is known within this
SEASONS_S = 1.0  # how often seasons due to close are looked for
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
        self.catalog = Catalog({})
        self._catalog_version: object = None
        self._games: set[str] = set()
        self._closed: set[tuple[str, str, str]] = set()  # (game, board, season) whose standings are kept
        self._close_backoff = Backoff()  # seasons whose close failed: retried after a growing wait

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
                self._catalog_version = await catalog_store.catalog_version(conn)
                self.catalog = await catalog_store.load_catalog(conn)
                self._games = set(games)
                self._set_orders()  # before anything is loaded: the loader keys each entry in its board's order
                watermarks = await checkpoints.read_watermarks(conn, "player", self.settings.player_shards)
                stat_rows = await self._load_stat_boards(conn, games, watermarks, loader)
                self._closed = await stat_boards.closed_seasons(conn, games)
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
        self.every(CATALOG_POLL_S, self._poll_catalog, "catalog poll")
        self.every(SEASONS_S, self._close_seasons, "season close")
        self.every(METRICS_S, self._export_metrics, "metrics")
        self.every(TOPS_S, self._watch_tops, "top-N watch")
        log.info("leaderboard shard %d: %d games%s, %d entries (+%d in periods), %d journal rows replayed, "
                 "%d stat board entries", self.index, len(games), " + all-games board" if owns_totals else "",
                 entries, in_periods, len(tail), stat_rows)

    # ---- stat boards ------------------------------------------------------
    def _set_orders(self) -> None:
        """Each stat board of this shard's games ranks in its catalog order (a flip re-keys what is held)."""
        for game_id, boards in self.catalog.boards.items():
            if game_id in self._games or shard_of(game_id, self.settings.leaderboard_shards) == self.index:
                for board in boards.values():
                    self.standings.set_order(stat_board_id(game_id, board.board_id), stat_order(board.order))

    async def _reload_catalog(self) -> None:
        async with self.pool.acquire(timeout=self.settings.db_timeout_s) as conn:
            self._catalog_version = await catalog_store.catalog_version(conn)
            self.catalog = await catalog_store.load_catalog(conn)
        self._games |= {g for g in self.catalog.points if shard_of(g, self.settings.leaderboard_shards) == self.index}
        self._set_orders()

    async def _poll_catalog(self) -> None:
        async with self.pool.acquire(timeout=self.settings.db_timeout_s) as conn:
            version = await catalog_store.catalog_version(conn)
        if version != self._catalog_version:
            await self._reload_catalog()

    async def _load_stat_boards(self, conn: Any, games: list[str], watermarks: dict[int, int],
                                loader: Loader) -> int:
        """Recovery of the stat boards, as the player shards hold them: the
        all-time value from their checkpointed stat values plus the stat journal
        after each player shard's watermark (folded by the same StatBook code);
        day, week and season values folded from the stat journal rows of their
        windows (the same StatBoardBook code; the player shards' checkpoint of
        them, player_stat_periods, is not read here yet)."""
        boarded = sorted(g for g in games if self.catalog.boards.get(g))
        if not boarded:
            return 0
        book = StatBook()
        for r in await stat_boards.checkpointed_values(conn, boarded):
            book.load(r["player_id"], r["game_id"], r["stat_id"], r["value"], r["updated_us"], r["last_seq"])
        for p in range(self.settings.player_shards):
            book.replay(await stat_boards.tail(conn, p, watermarks.get(p, 0), boarded))
        periods = StatBoardBook(self.clock)
        now = now_us()
        mine = set(boarded)
        ranked = [(g, stat) for g, stat in board_stats(self.catalog) if g in mine]
        await stat_boards.stream_game_rows_between(  # streamed, folded a chunk at a time
            conn, ranked, from_us(periods.window_start(self.catalog, now)), stat_boards.FOREVER,
            lambda rows: periods.fold_rows(self.catalog, rows))
        pairs = {(p, g) for p, held in book.players.items() for g in held} | set(periods.held)
        regions = await stat_boards.regions(conn, sorted({p for p, _ in pairs}))
        rows = [(player_id, board, regions.get(player_id), value, reached, version)
                for player_id, board, value, reached, version in periods.rows(self.catalog, book, pairs, now, 0)]
        loader.add(rows)
        return len(rows)

    async def _close_seasons(self) -> None:
        """Close every season of this shard's stat boards that ended at least
        season_close_grace_s ago and is not closed yet (podium/core/seasons.py)."""
        now = now_us()
        grace_us = int(self.settings.season_close_grace_s * 1_000_000)
        due: dict[tuple[str, str, str], tuple[str, StatBoard, Season]] = {}
        for game_id in sorted(self._games):
            for board in self.catalog.boards.get(game_id, {}).values():
                if not board.seasons:
                    continue
                closed = {s for g, b, s in self._closed if g == game_id and b == board.board_id}
                for season in Seasons.of(board.seasons).closing_due(now, closed, grace_us):
                    due[(game_id, board.board_id, season.season_id)] = (game_id, board, season)
        # Each close on its own deadline; one that fails or overruns waits a backoff
        # (not every second) and never holds back the others.
        failures = await run_each(list(due), lambda key: self._close_season(*due[key]), self._close_backoff,
                                  time.monotonic(), self.settings.season_close_timeout_s)
        for (game_id, stat_board, season_id), exc, wait in failures:
            metrics.count("podium_season_close_failures", shard=str(self.index))
            log.error("leaderboard shard %d: closing season %s of %s/%s failed (%s: %s); retrying in %.0fs",
                      self.index, season_id, game_id, stat_board, type(exc).__name__, exc, wait)

    async def _close_season(self, game_id: str, board: StatBoard, season: Season) -> None:
        """Keep a season's final standings once. They are computed from the stat
        journal rows made within [start, end) (the source of truth: a delivery
        still held by a stopped lane cannot leave a row out), folded and ranked by
        the same code and engine as the live season board."""
        base = stat_board_id(game_id, board.board_id)
        only = Catalog({}, boards={game_id: {board.board_id: StatBoard(
            board.board_id, board.name, board.stat_id, board.order, (),
            ((season.season_id, season.start_us, season.end_us),))}})
        async with self.pool.acquire(timeout=self.settings.db_timeout_s) as conn:
            folded = StatBoardBook(self.clock)
            await stat_boards.stream_game_rows_between(
                conn, [(game_id, board.stat_id)], from_us(season.start_us), from_us(season.end_us),
                lambda rows: folded.fold_rows(only, rows), timeout=self.settings.season_close_timeout_s)
            regions = await stat_boards.regions(conn, sorted({p for p, _ in folded.held}))
            standings = Standings()
            standings.set_order(base, stat_order(board.order))
            updates = ScoreUpdates()
            for player_id, ident, value, reached, version in folded.rows(only, StatBook(), folded.held, now_us(), 0):
                updates.add(player_id, ident, regions.get(player_id), value, reached, version)
            standings.apply(updates, track=())
            kept: list[stat_boards.StandingRow] = []
            for row in final_standings(standings, season_board_id(base, season.season_id)):
                reached_at = from_us(row.reached_us)
                kept.append(("", row.rank, row.player_id, row.value, reached_at))
                if row.region and row.region_rank is not None:
                    kept.append((row.region, row.region_rank, row.player_id, row.value, reached_at))
            wrote = await stat_boards.close_season(conn, game_id, board.board_id, season.season_id,
                                                   from_us(season.end_us), kept)
        self._closed.add((game_id, board.board_id, season.season_id))
        log.info("leaderboard shard %d: season %s of %s closed%s (%d standings)", self.index, season.season_id,
                 base, "" if wrote else " already", len(kept))

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
            elif kind == SEASON and self._season_retired(board, now):
                self.standings.drop(board)

    def _season_retired(self, board: str, now: int) -> bool:
        """A season board is held until its standings are kept and SEASON_KEEP_US
        has passed since its end (its final standings are read from PostgreSQL)."""
        ref = parse(board)
        held = self.catalog.boards.get(ref.game_id, {}).get(ref.stat_board or "")
        season = None if held is None else next((s for s in held.seasons if s[0] == ref.season_id), None)
        if season is None:
            # Unknown here: a season imported since the last catalog poll must not be dropped
            # (its values, once delivered, are not resent). A removed season's board stays held.
            return False
        return (ref.game_id, ref.stat_board, ref.season_id) in self._closed and season[2] + SEASON_KEEP_US < now

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
        orders = self.standings.orders
        if unknown_stat_boards(set(updates.game_ids), orders):
            await self._reload_catalog()  # a stat board imported since the last poll: its order first
            unknown = unknown_stat_boards(set(updates.game_ids), orders)
            if unknown:
                # Not in the catalog even now (removed from it): skipped, never refused.
                # Refusing would stop the lane's delivered seq and with it every game on
                # the player shard; the player shard stops sending them once it evicts.
                before = len(updates)
                updates = updates.without(unknown)
                metrics.count("podium_stat_rows_unknown_board", before - len(updates), shard=str(self.index))
                log.warning("leaderboard shard %d: skipped %d rows of stat boards not in the catalog: %s",
                            self.index, before - len(updates), sorted(unknown)[:5])
        changes: list[RankChange] = []
        for part in updates.slices(APPLY_SLICE):
            # Live rank pushes are for all-time boards; period ranks are read on demand.
            changes += self.standings.apply(part, track=self.presence, ranked=_all_time)
            if len(part) == APPLY_SLICE:
                await asyncio.sleep(0)  # let waiting reads in
        if changes:
            self.spawn(publish(self.redis, self.settings.redis_prefix, self.presence.replicas_of,
                               [_rank_event(c) for c in changes]))
        best = self._tops_due  # board -> the best score an update brought to it since the last look
        tops = self.tops
        for player_id, game_id, points in zip(updates.player_ids, updates.game_ids, updates.points, strict=True):
            score = self.standings.order_of(game_id).score(points) if orders else points  # stat boards: by order
            if tops.holds(game_id, player_id):
                score = TOP_MEMBER_MOVED  # its score may have fallen (a `set` stat board): look whatever the floor
            if best.get(game_id, -1) < score:
                best[game_id] = score
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
            score = board.order.score  # a stat board's value as the score its order ranks (higher is better)
            for player_id in self.tops.dropped(watched, [(r.player_id, score(r.points)) for r in top]):
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
            order = self.standings.order_of(game_id)  # a stat board's keys are in its order (asc or desc)
            key = sort_key if order is POINTS else order.key
            old_key = None if old is None else key(player_id, old[0], old[1])
            for friend_id in passed(old_key, key(player_id, new[0], new[1]), keys)[:most]:
                out.append([player_id, game_id, new[0], friend_id, order.unpack(held[friend_id][0])[1]])
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
