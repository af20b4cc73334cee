"""PlayerShard: the Ray actor owning the players whose stable hash lands on it.
It journals unlocks and stat updates (group commit), acks only after commit,
keeps each player's per-game counters and stat values, unlocks threshold
achievements in the commit that crosses them, pushes unlock events and sends
absolute scores to the leaderboard shards. The commit/delivery logic lives in podium/core/journal_pipeline.py;
this shell gives it its I/O. Gateway -> PlayerShard -> LeaderboardShard."""
from __future__ import annotations

import asyncio
import gc
import logging
import time
from collections.abc import Iterable
from typing import Any

import asyncpg
import ray

from podium.actors.shell import ActorBase
from podium.actors.social import Move, Social
from podium.core import delivery, progress, social_events
from podium.core.catalog import Catalog
from podium.core.friendship import FriendBook
from podium.core.history import day_series
from podium.core.intake import IntakePlan, plan_intake
from podium.core.journal_pipeline import Committed, JournalPipeline
from podium.core.periods import DAY_US, PeriodClock
from podium.core.player_state import GameStats, Pair, PeriodStats, PlayerBook, from_us, now_us, to_us
from podium.core.stat_boards import StatBoardBook, board_stats, only, series
from podium.core.stat_book import StatBook
from podium.persistence import catalog_store, checkpoints, journal, stat_boards
from podium.persistence.db import connection
from podium.settings import Settings
from podium.telemetry import metrics
from podium.transport import channel, directory
from podium.transport.pushes import publish
from podium.wire.errors import LayoutMismatch, ShardUnavailable, UnknownGame
from podium.wire.messages import ALL_GAMES, AckBatch, AckStatus, UnlockBatch

log = logging.getLogger(__name__)
CATALOG_RELOAD_S = 1.0  # an unknown id reloads the catalog at most this often
CATALOG_POLL_S = 2.0  # changed points (same ids) are picked up within this
REDELIVER_S = 1.0  # an idle shard retries a failed leaderboard delivery this often
INBOX_EXPIRE_S = 600.0  # how often inbox items past inbox_days are dropped
METRICS_S = 5.0  # how often the shard's gauges are exported
STAT_EVICT_S = 60.0  # how often closed stat period and season values are forgotten


@ray.remote(max_restarts=-1, max_task_retries=0, num_cpus=0)
class PlayerShard(Social, ActorBase):
    def __init__(self, index: int, settings: Settings) -> None:
        super().__init__(index, settings)
        self._fresh_state()

    def _fresh_state(self) -> None:
        """Everything the shard holds, empty (at start, and when resharding reconfigures it)."""
        settings = self.settings
        self.book = PlayerBook(PeriodClock(settings.period_reset_hour))
        self.stat_book = StatBook()
        self.stat_boards = StatBoardBook(self.book.clock)
        self.catalog = Catalog({})
        self._planned = self.catalog  # the catalog the write round's admission saw (its journal write uses it)
        self._admitted: tuple[UnlockBatch, IntakePlan] | None = None  # the round's admission plan, for its write
        self.event_replans = 0  # rounds planned again: a stat event id in them was journaled already
        self._catalog_at = 0.0
        self._catalog_version: object = None
        leaderboards = settings.leaderboard_shards
        self.pipeline = JournalPipeline(
            self._journal, self._reconcile, self._deliver, settle=self._settle, journaled=self._journaled,
            plan=self._plan, refresh=self._refresh_catalog,
            route=lambda pair: delivery.destinations(pair, leaderboards),
            backlog_max=settings.delivery_backlog_max, chunk_pairs=settings.delivery_chunk_pairs,
            pending_max=settings.pending_unlocks_max, deadline_s=settings.actor_call_timeout_s,
            redeliver_s=REDELIVER_S)
        self.checkpointed_seq = 0
        self._series_written: list[str] = []  # the stat series the last checkpoint said it holds whole
        self.stat_recovery: dict[str, int] = {}  # what recovery read for the stat boards' period values
        self._to_leaderboards: dict[int, channel.Channel] = {}  # leaderboard shard -> its apply channel
        self.friend_book = FriendBook()
        self._friends_lock = asyncio.Lock()
        self._moves = {}
        self._moves_ready = asyncio.Event()
        self.passes_dropped = 0
        self._quiesced = False  # resharding: new unlocks are refused
        self._handed_over = False  # resharding: quiesce took the last checkpoint of this layout
        self._checkpoint_lock = asyncio.Lock()  # the periodic checkpoint and quiesce's never overlap
        self._checkpointed_at = time.monotonic()
        self._tag = str(self.index)  # the `shard` tag of its metrics

    # ---- recovery -------------------------------------------------------
    async def recover(self) -> None:
        self.book = PlayerBook(self.book.clock)  # from nothing, also after a failed attempt
        self.stat_book = StatBook()
        self.stat_boards = StatBoardBook(self.book.clock)
        await self._reload_catalog()
        async with connection(self.settings.database_url or "", timeout_s=self.settings.recovery_timeout_s) as conn:
            # An append of this shard's previous life may still be landing: the snapshot
            # must see it, or the rows after it would move the watermark past it.
            await journal.settle(conn, shard=self.index, timeout_s=self.settings.db_timeout_s)
            async with conn.transaction(isolation="repeatable_read", readonly=True):
                await conn.execute("SET LOCAL work_mem = '256MB'")  # recovery sorts in memory, not on disk
                layouts = await conn.fetch("SELECT DISTINCT shard_count FROM shard_watermarks WHERE kind = 'player'")
                if any(r["shard_count"] != self.settings.player_shards for r in layouts):
                    raise LayoutMismatch(
                        f"checkpoints were written by {[r['shard_count'] for r in layouts]} player shards, "
                        f"this cluster runs {self.settings.player_shards}; resharding is offline"
                    )
                watermark = (await checkpoints.read_watermarks(conn, "player", self.settings.player_shards)).get(
                    self.index, 0
                )
                stats = await checkpoints.read_player_shard_stats(conn, self.index)
                live = [(kind, from_us(start)) for kind, start in self.book.clock.live_starts(now_us())]
                periods = await checkpoints.read_player_shard_periods(conn, self.index, live)
                replay = await journal.replay(conn, shard=self.index, after_seq=watermark)
                stat_values = await checkpoints.read_player_shard_stat_values(conn, self.index)
                stat_replay = await journal.replay_stats(conn, shard=self.index, after_seq=watermark)
                # Stat boards' day/week/season values: the checkpointed ones of the series the
                # checkpoint holds whole, then (below) the stat rows after the watermark. A
                # series it does not hold (a board added or changed since this shard's last
                # recovery, or no checkpoint of them yet) is rebuilt from the journal rows of
                # its windows, streamed and folded a chunk at a time (podium/core/stat_boards.py).
                at = now_us()
                covered = await checkpoints.read_stat_series(conn, self.index, self.settings.player_shards)
                loaded = await checkpoints.stream_player_shard_stat_periods(
                    conn, self.index, lambda rows: self.stat_boards.load(self.catalog, rows, at, covered))
                rebuilt = only(self.catalog, series(self.catalog) - covered)
                streamed = 0
                if rebuilt.boards:
                    streamed = await stat_boards.stream_shard_rows_since(
                        conn, self.index, from_us(self.stat_boards.window_start(rebuilt, at)), watermark,
                        board_stats(rebuilt), lambda rows: self.stat_boards.fold_rows(rebuilt, rows))
                # Players with stats and no unlock: their region is in `players` (the stat rows record it).
                stat_players = {r["player_id"] for r in stat_values} | {r["player_id"] for r in stat_replay}
                stat_regions = await stat_boards.regions(conn, sorted(stat_players))
                edges = await self.load_friends(conn)
        for r in stats:
            self.book.load(r["player_id"], r["game_id"], GameStats(
                r["points"], r["unlocked_count"], to_us(r["first_unlock_at"]), to_us(r["last_unlock_at"]),
                to_us(r["score_reached_at"]), r["last_seq"]), r["region"])
        for r in periods:
            self.book.load_period(r["player_id"], r["game_id"], r["period"], r["start_us"],
                                  PeriodStats(r["points"], r["unlocked_count"], r["reached_us"], r["last_seq"]))
        touched = self.book.replay(replay, self._stat_games)
        self._learn_unlocks(replay)
        for r in stat_values:
            self.stat_book.load(r["player_id"], r["game_id"], r["stat_id"], r["value"], r["updated_us"],
                                r["last_seq"])
        for player_id, region in stat_regions.items():  # players with stats and no points game
            self.book.regions.setdefault(player_id, region)
        touched |= self._replay_stats(stat_replay)
        # The stat rows after the watermark into the period values (seq-guarded: a value
        # checkpointed or rebuilt with a row keeps it once), and every pair with stat
        # boards whose rows may not have reached its leaderboard.
        touched |= self.stat_boards.rebuild(self.catalog, stat_replay, to_us)
        touched |= {(r["player_id"], r["game_id"]) for r in stat_replay if self.catalog.boards.get(r["game_id"])}
        self.stat_boards.complete = series(self.catalog)
        self._series_written = sorted(covered)
        self.stat_recovery = {"checkpoint_rows": loaded, "streamed_rows": streamed,
                              "rows_after_watermark": len(stat_replay)}
        # Rows after the watermark may never have reached their leaderboard: the
        # deliverer resends them all (versioned, so a leaderboard that has them
        # ignores the resend). Recovery does not wait for the leaderboards.
        self.checkpointed_seq = watermark
        self.pipeline.resume(watermark, max([watermark] + [r["seq"] for r in replay + stat_replay]), touched)
        self.supervise("journal writer", self.pipeline.run_writer, on_restart=self._writer_restarted)
        self.supervise("deliverer", self.pipeline.run_deliverer)
        self.every(self.settings.checkpoint_interval_s, self.checkpoint, "player checkpoint")
        self.every(CATALOG_POLL_S, self._poll_catalog, "catalog poll")
        self.every(STAT_EVICT_S, self._evict_stat_periods, "stat period eviction")
        self.supervise("friend reloads", self.follow_reloads)
        self.supervise("friend passes", self.run_passes)
        self._checkpointed_at = time.monotonic()  # recovery read the latest checkpoint
        self.every(METRICS_S, self.export_metrics, "metrics")
        if self.index == 0:
            self.every(INBOX_EXPIRE_S, self.expire_inboxes, "inbox expiry")
        log.info("player shard %d: %d stats rows, %d stat values, %d friend edges, %d unlocks and %d stat "
                 "updates replayed after seq %d; stat boards: %d checkpointed period values read, %d journal "
                 "rows streamed to rebuild %d series the checkpoint did not hold", self.index, len(stats),
                 len(stat_values), edges, len(replay), len(stat_replay), watermark, loaded, streamed,
                 len(series(rebuilt)))

    def _writer_restarted(self) -> None:
        self.pipeline.suspect = True  # it died mid-round: what it wrote is unknown until reconciled

    async def _reload_catalog(self) -> None:
        # A write round may wait on this (an unknown id): the write path's acquire deadline.
        async with self.pool.acquire(timeout=self.settings.db_timeout_s) as conn:
            version = await catalog_store.catalog_version(conn)  # read first: a change meanwhile reloads again
            self.catalog = await catalog_store.load_catalog(conn)  # stats and thresholds too
            self._catalog_version = version  # only once loaded: a failed load is retried by the next poll
            self.stat_boards.catalog_changed(self.catalog)  # before any await: a checkpoint sees both or neither
        self._catalog_at = time.monotonic()

    async def _poll_catalog(self) -> None:
        """Reload when any game or achievement changed (e.g. new points): they apply
        to unlocks from then on; journaled unlocks keep the points they were given."""
        async with self.pool.acquire(timeout=self.settings.db_timeout_s) as conn:
            version = await catalog_store.catalog_version(conn)
        if version != self._catalog_version:
            await self._reload_catalog()

    # ---- the write path -------------------------------------------------
    async def ingest(self, batch: UnlockBatch) -> AckBatch:
        """Ack each unlock of the batch; 'accepted' only once it is committed."""
        await self.ready()
        if self._quiesced:
            raise ShardUnavailable(f"player shard {self.index} is handing over to a new shard layout; retry shortly")
        return await self.pipeline.submit(batch)

    async def quiesce(self, timeout_s: float) -> int:
        """Resharding: refuse new unlocks (`unavailable`: the gateway retries),
        let what is queued commit and reach the leaderboards, then checkpoint.
        Returns the watermark, which is then this shard's newest journal row."""
        await self.ready()
        self._quiesced = True
        deadline = time.monotonic() + timeout_s
        while not self.pipeline.settled:
            if time.monotonic() > deadline:
                self._quiesced = False
                raise ShardUnavailable(f"player shard {self.index} did not settle within {timeout_s:g}s")
            await asyncio.sleep(0.02)
        await self.checkpoint(final=True)
        return self.checkpointed_seq

    async def ingest_address(self) -> tuple[str, int]:
        """Where this shard takes unlock batches (podium/transport/channel.py calls:
        `ingest` with UnlockBatch columns -> [statuses, reasons]): the gateway
        sends them there, not as Ray calls. A restarted shard listens on a new
        port, which the gateway asks for again."""
        return await self.listen("ingest", lambda host: channel.serve_calls(
            host, 0, {"ingest": self._ingest_columns, "friends": self._friends_of}, self.channel_key))

    async def _ingest_columns(self, columns: list[Any]) -> list[list[Any]]:
        """The channel's `ingest`: five columns, the sender's player-shard count,
        then the four stat columns if the batch has stat updates. A sender routing
        by another layout (a gateway replica of before a reshard) is refused, so
        no unlock lands on a shard that does not own it."""
        if columns[5:6] != [self.settings.player_shards]:
            raise ShardUnavailable(f"this batch was routed for {columns[5:6]} player shards; the cluster runs "
                                   f"{self.settings.player_shards}")
        acks = await self.ingest(UnlockBatch(*columns[:5], *columns[6:10]))
        return [acks.statuses, acks.reasons]

    def _leaderboard(self, shard: int) -> channel.Channel:
        to = self._to_leaderboards.get(shard)
        if to is None:
            to = self._to_leaderboards[shard] = channel.Channel(
                channel.asking(lambda: directory.leaderboard_shard(self.settings, shard).apply_address.remote()),
                name=f"leaderboard shard {shard}", connect_timeout_s=self.settings.actor_call_timeout_s,
                key=self.channel_key)
        return to

    async def _settle(self) -> None:
        """Until no journal transaction of this shard is open (JournalPipeline: before reconciling)."""
        async with self.pool.acquire(timeout=self.settings.db_timeout_s) as conn:
            await journal.settle(conn, shard=self.index, timeout_s=self.settings.db_timeout_s)

    async def _reconcile(self, after_seq: int) -> tuple[set[Pair], int, int]:
        """Fold in this shard's rows after `after_seq`: a journal write that failed
        may still have committed (connection lost during COMMIT)."""
        async with self.pool.acquire(timeout=self.settings.db_timeout_s) as conn:
            rows = await journal.replay(conn, shard=self.index, after_seq=after_seq)
            stat_rows = await journal.replay_stats(conn, shard=self.index, after_seq=after_seq)
        if rows or stat_rows:
            log.warning("player shard %d: %d unlock and %d stat rows committed by a write that reported an "
                        "error; folded in", self.index, len(rows), len(stat_rows))
        touched = self.book.replay(rows, self._stat_games)
        self._learn_unlocks(rows)
        touched |= self._replay_stats(stat_rows)
        touched |= self.stat_boards.rebuild(self.catalog, stat_rows, to_us)  # seq-guarded: folds only what is new
        return touched, max([after_seq] + [r["seq"] for r in rows + stat_rows]), len(rows) + len(stat_rows)

    def _replay_stats(self, rows: list[Any]) -> set[Pair]:
        """Fold stat journal rows (after the unlock rows of the same span) into the
        stat book, and the player's region into the book: a region change may come
        with a stat row only. Returns the pairs whose boards must move."""
        self.stat_book.replay(rows)
        touched: set[Pair] = set()
        for r in rows:  # its stat boards move too, also when it has no points game (as on the live path)
            touched |= self.book.region_change(r["player_id"], r["region"], r["seq"], self._stat_games(r["player_id"]))
        return touched

    def _stat_games(self, player_id: str) -> Iterable[str]:
        """The games whose stat boards hold the player: a region move moves them too."""
        return self.stat_boards.games_of(player_id, self.stat_book)

    def _learn_unlocks(self, rows: list[Any]) -> None:
        """Unlock rows of threshold achievements: known journaled, so a stat update
        that meets the threshold does not insert them again."""
        for r in rows:
            if self.catalog.threshold_of(r["game_id"], r["achievement_id"]) is not None:
                self.stat_book.unlocks.add((r["player_id"], r["game_id"], r["achievement_id"]))

    async def _journaled(self, batch: UnlockBatch) -> list[bool]:
        """Which of these items the journal holds (JournalPipeline: an item refused
        for a full backlog that was journaled already is answered `duplicate`)."""
        stat = [i for i in range(len(batch)) if batch.is_stat(i)]
        unlock = [i for i in range(len(batch)) if not batch.is_stat(i)]
        out = [False] * len(batch)
        async with self.pool.acquire(timeout=self.settings.db_timeout_s) as conn:
            if unlock:
                part = batch.take(unlock)
                for i, held in zip(unlock, await journal.journaled(conn, part.player_ids, part.game_ids,
                                                                   part.achievement_ids), strict=True):
                    out[i] = held
            if stat:
                held_events = await journal.stat_events_journaled(
                    conn, [batch.player_ids[i] for i in stat], [batch.game_ids[i] for i in stat],
                    [str(batch.event_ids[i]) for i in stat])
                for i, held in zip(stat, held_events, strict=True):
                    out[i] = held
        return out

    def _plan(self, batch: UnlockBatch) -> list[int]:
        """JournalPipeline's plan: what a write round may journal, before its backlog admission."""
        self._planned = self.catalog
        plan = plan_intake(batch, self._planned, self.stat_book.value, unlocked=self.stat_book.unlocked)
        self._admitted = (batch, plan)
        return plan.rows

    async def _refresh_catalog(self, batch: UnlockBatch) -> bool:
        """JournalPipeline's refresh: reload the catalog if the round names a game or
        achievement it lacks (one may have been added since), at most every
        CATALOG_RELOAD_S; the round then plans and admits again."""
        if time.monotonic() - self._catalog_at <= CATALOG_RELOAD_S or not plan_intake(batch, self.catalog).unknown_seen:
            return False
        self._catalog_at = time.monotonic()  # tried: a failing reload is not retried by every round meanwhile
        try:
            await self._reload_catalog()
        except (OSError, asyncpg.PostgresError, TimeoutError):
            log.warning("player shard %d: catalog reload failed; the round goes on with the catalog it has",
                        self.index, exc_info=True)
            return False  # its unknown ids are answered unknown_game/unknown_achievement, the rest journaled
        return True

    async def _journal(self, batch: UnlockBatch) -> Committed:
        """Journal the batch in one transaction and fold what was new into the
        books; publishes the unlock pushes. Planned by the catalog the round's
        admission saw: one the poll reloaded meanwhile could make an unlock valid
        that admission did not count against the backlog.

        The round's admission plan is the write's plan when the whole round is
        written (nothing refused; no await between them, so no fold moved a
        value meanwhile). It assumes no stat update's event id is journaled yet:
        a resent one the journal holds fails the stat insert on its unique key,
        the transaction rolls back and the round is planned again inside a new
        one, once the journal said which event ids it holds (those are
        duplicates and leave every value as it is). A round of first sends, the
        common case, so costs one plan and no look-up. A round whose plan rejects
        a stat update looks its event ids up before it plans again, as a resend
        is a duplicate whatever it carries."""
        admitted, self._admitted = self._admitted, None
        plan = admitted[1] if admitted is not None and admitted[0] is batch else None
        if plan is None:
            plan = plan_intake(batch, self._planned, self.stat_book.value, unlocked=self.stat_book.unlocked)
        # A journaled event id answers `duplicate` whatever its update carries, also one this plan rejects
        # (out of bounds from the value its first copy left, say): such a round looks its event ids up first.
        look_up = batch.has_stats and any(s is AckStatus.REJECTED and batch.is_stat(i)
                                          for i, s in enumerate(plan.statuses))
        if not look_up and not plan.journal_rows and not plan.stat_rows:
            return Committed(AckBatch(plan.statuses, plan.reasons), set(), 0)  # type: ignore[arg-type]
        at_us = now_us()
        now = from_us(at_us)
        t0 = time.perf_counter()
        try:
            async with self.pool.acquire(timeout=self.settings.db_timeout_s) as conn, journal.writing(conn, self.index):
                if look_up:
                    plan = await self._plan_stats(conn, batch)
                written = await self._append(conn, batch, plan, now)
        except journal.EventJournaled:
            self.event_replans += 1
            async with self.pool.acquire(timeout=self.settings.db_timeout_s) as conn, journal.writing(conn, self.index):
                plan = await self._plan_stats(conn, batch)
                written = await self._append(conn, batch, plan, now)
        metrics.observe("podium_journal_commit_seconds", time.perf_counter() - t0, shard=self._tag)
        metrics.observe("podium_journal_batch_unlocks", len(plan.journal_rows) + len(plan.stat_rows),
                        shard=self._tag)
        return self._fold(batch, plan, written, at_us)

    async def _plan_stats(self, conn: asyncpg.Connection, batch: UnlockBatch) -> IntakePlan:
        """Inside the append's transaction (the writer lock held, and this shard the
        only writer of its players): which stat updates the journal holds, then the plan."""
        stat = [i for i in range(len(batch)) if batch.is_stat(i)]
        held = await journal.stat_events_journaled(conn, [batch.player_ids[i] for i in stat],
                                                   [batch.game_ids[i] for i in stat],
                                                   [str(batch.event_ids[i]) for i in stat])
        known = {i for i, h in zip(stat, held, strict=True) if h}
        return plan_intake(batch, self._planned, self.stat_book.value, known, self.stat_book.unlocked)

    async def _append(self, conn: asyncpg.Connection, batch: UnlockBatch, plan: IntakePlan,
                      now: Any) -> tuple[dict[tuple[str, str, str], int], list[int], dict[str, str]]:
        """Insert the plan's unlocks (items and threshold crossings) and stat rows;
        returns (new unlock key -> seq, the stat rows' seqs, the region updates)."""
        units = [(i, batch.achievement_ids[i], pts) for i, pts in zip(plan.journal_rows, plan.points, strict=True)]
        units += [(c.index, c.achievement_id, c.points) for c in plan.crossings]
        items = plan.journal_rows + plan.stat_rows
        region_updates = {
            batch.player_ids[i]: region for i in items
            if (region := batch.regions[i]) and self.book.regions.get(batch.player_ids[i]) != region
        }
        region_of = [batch.regions[i] or self.book.regions.get(batch.player_ids[i]) for i, _, _ in units]
        client_at = [None if (c := batch.client_at_us[i]) is None else from_us(c) for i, _, _ in units]
        rows = await journal.insert_unlocks(
            conn, shard=self.index, player_ids=[batch.player_ids[i] for i, _, _ in units],
            game_ids=[batch.game_ids[i] for i, _, _ in units], achievement_ids=[a for _, a, _ in units],
            points=[p for _, _, p in units], regions=region_of, unlocked_at=now, client_at=client_at)
        idx = plan.stat_rows
        stat_seqs = await journal.insert_stats(
            conn, shard=self.index, player_ids=[batch.player_ids[i] for i in idx],
            game_ids=[batch.game_ids[i] for i in idx], stat_ids=[str(batch.stat_ids[i]) for i in idx],
            event_ids=[str(batch.event_ids[i]) for i in idx], ops=[str(batch.ops[i]) for i in idx],
            values=[int(batch.values[i] or 0) for i in idx], values_after=plan.values_after,
            regions=[batch.regions[i] or self.book.regions.get(batch.player_ids[i]) for i in idx], updated_at=now,
            client_at=[None if (c := batch.client_at_us[i]) is None else from_us(c) for i in idx])
        players = {r["player_id"] for r in rows} | {batch.player_ids[i] for i in idx}
        await journal.record_regions(conn, region_updates, players)
        return ({(r["player_id"], r["game_id"], r["achievement_id"]): r["seq"] for r in rows}, stat_seqs,
                region_updates)

    def _fold(self, batch: UnlockBatch, plan: IntakePlan,
              written: tuple[dict[tuple[str, str, str], int], list[int], dict[str, str]], at_us: int) -> Committed:
        """After the commit, with no await: fold the new rows into the books in seq
        order, answer each item, and push. A crossing's unlock is folded and
        pushed exactly as an unlock item is (boards, pushes, friends)."""
        seq_of, stat_seqs, region_updates = written
        statuses, reasons = plan.statuses, plan.reasons
        for i in plan.journal_rows:
            statuses[i] = AckStatus.DUPLICATE  # unless its row is new, below
        # (seq, index, achievement or None for a stat row, points or value_after)
        applied: list[tuple[int, int, str | None, int]] = []
        for i, pts in zip(plan.journal_rows, plan.points, strict=True):
            seq = seq_of.get((batch.player_ids[i], batch.game_ids[i], batch.achievement_ids[i]))
            if seq is not None:
                statuses[i] = AckStatus.ACCEPTED
                applied.append((seq, i, batch.achievement_ids[i], pts))
        for i in plan.journal_rows:  # inserted now or before: either way journaled
            if self._planned.threshold_of(batch.game_ids[i], batch.achievement_ids[i]) is not None:
                self.stat_book.unlocks.add(batch.key(i))
        for c in plan.crossings:
            self.stat_book.unlocks.add((batch.player_ids[c.index], batch.game_ids[c.index], c.achievement_id))
            seq = seq_of.get((batch.player_ids[c.index], batch.game_ids[c.index], c.achievement_id))
            if seq is not None:  # None: unlocked before (a direct unlock, or a `set` stat crossing again)
                applied.append((seq, c.index, c.achievement_id, c.points))
        for seq, i, after in zip(stat_seqs, plan.stat_rows, plan.values_after, strict=True):
            statuses[i] = AckStatus.ACCEPTED
            applied.append((seq, i, None, after))
        applied.sort()
        touched: set[Pair] = set()
        boards: set[Pair] = set()  # pairs a stat row moved on their game's stat boards
        pushes: list[tuple[str, dict[str, object]]] = []
        moves: dict[Pair, tuple[Move | None, Move]] = {}  # players with friends: their score before and after
        at_text = from_us(at_us).isoformat()
        moved: dict[tuple[str, str, object], dict[str, object]] = {}  # the round's last progress per achievement
        for seq, i, achievement_id, amount in applied:
            player_id, game_id = batch.player_ids[i], batch.game_ids[i]
            if player_id in region_updates:  # the journal records a region only with a new row
                # Its stat boards move too, also when it has no points game.
                touched |= self.book.region_change(player_id, region_updates[player_id], seq,
                                                   self._stat_games(player_id))
            if achievement_id is None:
                stat_id = str(batch.stat_ids[i])
                before_value = self.stat_book.value(player_id, game_id, stat_id)
                self.stat_book.fold(seq, player_id, game_id, stat_id, amount, at_us)
                if self.stat_boards.fold(self._planned, seq, player_id, game_id, stat_id, str(batch.ops[i]),
                                         int(batch.values[i] or 0), at_us):
                    boards.add((player_id, game_id))  # owed to the game's leaderboard, as an unlock's pair is
                if player_id in self.presence:
                    for event in progress.events(self._planned, game_id, stat_id, before_value, amount):
                        moved[(player_id, game_id, event["achievement_id"])] = event
                continue
            pts = amount
            has_friends = player_id in self.friend_book.friends
            if has_friends:
                before = self.book.games.get(player_id, {}).get(game_id)
                old: Move | None = None if before is None else (before.points, before.reached_us)
            self.book.apply(seq, player_id, game_id, pts, at_us)
            touched.add((player_id, game_id))
            stats = self.book.games[player_id][game_id]
            if has_friends:
                pair = (player_id, game_id)
                moves[pair] = (moves[pair][0] if pair in moves else old, (stats.points, stats.reached_us))
                pushes += self.friend_unlock_events(player_id, social_events.unlocked(
                    player_id, game_id, achievement_id, pts, stats.points, at_text))
            if player_id not in self.presence:
                continue
            pushes.append((player_id, {
                "type": "unlock.accepted", "game_id": game_id, "achievement_id": achievement_id,
                "points": pts, "game_points": stats.points, "at": at_text,
            }))
        pushes += [(player_id, event) for (player_id, _, _), event in moved.items()]
        if pushes:  # the player's own pushes and their friends' in one publish per replica
            self.spawn(publish(self.redis, self.settings.redis_prefix, self.presence.replicas_of, pushes))
        if moves:
            self.queue_passes(moves)
        # A pair only a stat row touched leaves the player's total as it was: its game's boards only. Not a
        # player whose region changed: a first region moves nothing held (region_change returns no pair), yet
        # the total must reach its new regional totals board.
        boards_only = {pair for pair in boards - touched if pair[0] not in region_updates}
        return Committed(AckBatch(statuses, reasons), touched | boards,  # type: ignore[arg-type]
                         max((a[0] for a in applied), default=0), boards_only)

    async def _deliver(self, shard: int, items: set[Pair]) -> None:
        """Send absolute scores of one chunk of items to leaderboard shard `shard`
        (in parts under delivery.CHUNK_BYTES), and wait: a pair's scores on its
        game's boards, or (player, ALL_GAMES) for the player's total."""
        players = {p for p, g in items if g == ALL_GAMES}
        pairs = {pair for pair in items if pair[1] != ALL_GAMES}
        # Period scores at or below what this shard has are on it already.
        at, delivered = now_us(), self.pipeline.delivered_to(shard)
        games = self.book.games
        updates = self.book.score_updates({(p, g) for p, g in pairs if g in games.get(p, ())}, at, delivered)
        updates.extend(self.book.total_updates(players))
        # The same pairs' stat boards (all-time value, live day/week/season values), versioned like the
        # points scores (a region move re-versions them), on the same lane and watermark.
        regions = self.book.regions
        for player_id, board, value, reached, version in self.stat_boards.rows(
                self.catalog, self.stat_book, pairs, at, delivered, self.book.version):
            updates.add(player_id, board, regions.get(player_id), value, reached, version)
        to = self._leaderboard(shard)
        calls = [to.call("apply", delivery.columns(part)) for part in delivery.fit(updates)]
        results: list[Any] = await asyncio.wait_for(asyncio.gather(*calls, return_exceptions=True),
                                                    self.settings.actor_call_timeout_s)
        failures = [r for r in results if isinstance(r, Exception)]
        if failures:
            # Even a leaderboard that restarts (and rebuilds from the journal) may have
            # missed nothing or everything: resending is exact, so always resend.
            raise failures[0]

    async def _evict_stat_periods(self) -> None:
        self.stat_boards.evict(self.catalog, now_us())

    async def checkpoint(self, *, final: bool = False) -> None:
        """Write what changed, with the watermark. One at a time: an older one
        committing last would move the watermark back. `final` (quiesce): the
        last of this layout. Once relayout has run, the watermark rows belong to
        the new layout; a checkpoint after it (the periodic loop runs until
        reconfigure stops it, and stat period evictions keep making work) would
        write the old shard count back over them."""
        async with self._checkpoint_lock:
            if self._handed_over:
                return
            await self._checkpoint()
            self._handed_over = final

    async def _checkpoint(self) -> None:
        boards = self.stat_boards
        held_whole = sorted(boards.complete)
        if (not self.book.dirty_count and not self.stat_book.dirty_count and not boards.dirty_count
                and held_whole == self._series_written and self.pipeline.delivered_seq == self.checkpointed_seq):
            self._checkpointed_at = time.monotonic()  # nothing new: the checkpoint is current
            return
        watermark = self.pipeline.delivered_seq  # taken with the snapshot: no await in between
        dirty = self.book.take_dirty()
        dirty_stats, stat_columns = self.stat_book.take_dirty()
        dirty_periods, period_columns, gone = boards.take_dirty()
        try:
            async with self.pool.acquire() as conn:
                await checkpoints.write_player_checkpoint(
                    conn, shard=self.index, shard_count=self.settings.player_shards,
                    watermark=watermark, columns=dirty.stats_columns, period_columns=dirty.period_columns,
                    stat_columns=stat_columns, stat_period_columns=period_columns, stat_periods_gone=gone,
                    stat_series=held_whole,
                )
        except BaseException:
            self.book.mark_dirty(dirty)
            self.stat_book.mark_dirty(dirty_stats)
            boards.mark_dirty(dirty_periods, gone)
            raise
        self._series_written = held_whole
        self.checkpointed_seq = watermark
        self._checkpointed_at = time.monotonic()
        self.book.evict_periods(now_us())

    async def export_metrics(self) -> None:
        """The shard's gauges (podium/telemetry/metrics.py), every METRICS_S."""
        shard = self._tag
        metrics.gauge("podium_delivery_backlog_pairs", self.pipeline.backlog, shard=shard)
        metrics.gauge("podium_delivery_lag_rows", self.pipeline.journaled_seq - self.pipeline.delivered_seq,
                      shard=shard)
        metrics.gauge("podium_checkpoint_age_seconds", time.monotonic() - self._checkpointed_at, shard=shard)
        metrics.gauge("podium_players", len(self.book.games), shard=shard)
        metrics.gauge("podium_friend_edges", len(self.friend_book), shard=shard)

    # ---- reads ------------------------------------------------------------
    async def dashboard(self, player_ids: list[str]) -> list[dict[str, object]]:
        self.serving()
        return [self.book.dashboard(p) for p in player_ids]

    async def progress(self, player_id: str, game_id: str) -> dict[str, object]:
        """The player's stat values in the game and their progress towards each
        threshold achievement, from what this shard holds (every accepted update)."""
        self.serving()
        if not self.catalog.has_game(game_id) and time.monotonic() - self._catalog_at > CATALOG_RELOAD_S:
            await self._reload_catalog()  # the gateway knows the game: it was added since
        if not self.catalog.has_game(game_id):
            raise UnknownGame(f"no game {game_id!r} in the catalog")
        return progress.body(self.catalog, player_id, game_id, self.stat_book.of(player_id, game_id))

    async def history(self, player_id: str, game_id: str | None, days: int) -> dict[str, object]:
        """Points and unlocks per day over the last `days` days (today included):
        checkpointed days from PostgreSQL, overlaid with what this shard holds."""
        self.serving()
        first = self.book.clock.current("day", now_us()) - (days - 1) * DAY_US
        async with self.pool.acquire() as conn:
            rows = await checkpoints.read_player_days(conn, player_id, from_us(first), game_id)
        held = [(r["game_id"], r["start_us"], r["points"], r["unlocked_count"]) for r in rows]
        return {"player_id": player_id, "game_id": game_id, "days": day_series(
            held, self.book.days(player_id, game_id, first), first, days)}

    async def status(self) -> dict[str, object]:
        await self.ready()
        return {"shard": self.index, "players": len(self.book.games), **self.pipeline.status(),
                "checkpointed_seq": self.checkpointed_seq, "dirty": self.book.dirty_count,
                "stat_values": len(self.stat_book), "stat_dirty": self.stat_book.dirty_count,
                "stat_periods_dirty": self.stat_boards.dirty_count, "stat_recovery": self.stat_recovery,
                "online": len(self.presence), "recovered_in_s": self.recovered_in_s,
                "friend_edges": len(self.friend_book), "passes_waiting": len(self._moves),
                "passes_dropped": self.passes_dropped, "event_replans": self.event_replans,
                "gc_frozen": gc.get_freeze_count(), "node": ray.util.get_node_ip_address(),
                "node_id": ray.get_runtime_context().get_node_id(),
                "checkpoint_age_s": round(time.monotonic() - self._checkpointed_at, 1),
                "loop": self.loop_lag.status()}
