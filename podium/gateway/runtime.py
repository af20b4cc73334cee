"""Everything one gateway replica holds: settings, its pool and Redis client,
the catalog and API-key caches, the micro-batcher and the push hub. Started on
the first request (a Serve replica's constructor cannot await)."""
from __future__ import annotations

import asyncio
import logging
import time
import uuid
from typing import Any

import asyncpg
import orjson
import redis.asyncio as aioredis

from podium.core.board_reads import Answer, Read
from podium.core.catalog import Catalog
from podium.core.periods import ALL_TIME, SEASON, PeriodClock, board_id, game_of, season_board_id, stat_board_id
from podium.core.player_state import now_us
from podium.core.routing import shard_of
from podium.core.tasks import log_failure, supervise
from podium.gateway.admission import Admission
from podium.gateway.auth import KeyCache, token_keys
from podium.gateway.batcher import ShardBatcher
from podium.gateway.board_watch import BoardWatch, Key
from podium.gateway.heap import HeapFreezer
from podium.gateway.limits import nofile_limit, sockets_per_replica
from podium.gateway.push_hub import PushHub, draining_key, loop_key
from podium.gateway.rate_limits import RateLimits
from podium.gateway.read_batcher import ReadBatcher
from podium.gateway.read_channel import ReadChannel
from podium.persistence import catalog_store
from podium.persistence.db import create_pool
from podium.settings import Settings
from podium.telemetry import metrics
from podium.telemetry.metrics import loop_monitor
from podium.transport import directory
from podium.transport.channel import Channel, asking
from podium.wire.errors import InvalidRequest, ShardUnavailable, UnknownBoard, UnknownGame, UnknownSeason
from podium.wire.messages import ALL_GAMES, AckBatch, AckStatus, UnlockBatch

log = logging.getLogger(__name__)
_STATUS = {s.value: s for s in AckStatus}
CATALOG_TTL_S = 2.0
METRICS_S = 5.0  # how often the replica's gauges are exported
RARITY_TTL_S = 10.0  # rarity is a journal count: recount at most this often per game and replica
LOOP_KEY_TTL_S = 60  # a replica's loop lag in Redis outlives it this long at most


class Runtime:
    def __init__(self, settings: Settings, plane: str = "both") -> None:
        self.settings = settings
        self.plane = plane  # which routes this replica serves (podium/gateway/app.py): sockets, http or both
        self.replica = uuid.uuid4().hex  # presence, metrics and `podium status` know the replica by this
        self.loop_lag = loop_monitor(settings, "gateway", self.replica)
        try:  # Serve runs the constructor on the replica's loop: watch it from now on
            asyncio.get_running_loop()
            self.loop_lag.start()
        except RuntimeError:
            pass  # no loop yet: the first request starts it (ready)
        self.pool: asyncpg.Pool
        self.redis: aioredis.Redis
        self.keys: KeyCache
        self.limits: RateLimits
        self.hub: PushHub
        self.clock = PeriodClock(settings.period_reset_hour)
        self.batcher = ShardBatcher(
            self._send, window_s=settings.batch_window_ms / 1000, max_items=settings.max_batch_items,
            max_pending=settings.max_pending_per_shard, deadline_s=settings.call_deadline_s,
            attempt_timeout_s=settings.actor_call_timeout_s, max_delay_s=settings.max_ack_delay_s,
        )
        self.reads = ReadBatcher(
            self._query, window_s=settings.read_batch_window_ms / 1000, max_batch=settings.max_read_batch,
            max_pending=settings.max_pending_reads, timeout_s=settings.actor_call_timeout_s,
        )
        self.channels: dict[int, ReadChannel] = {}  # leaderboard shard -> its read channel
        self.ingest_channels: dict[int, Channel] = {}  # player shard -> its ingest channel
        self.channel_key = settings.channel_key()
        self.tokens = token_keys(settings)
        self.admission = Admission(sockets_per_replica(settings, nofile_limit()), settings.max_sockets_per_player)
        self.draining = asyncio.Event()  # set once the replica is told to go: sockets close with 1012
        self.boards = BoardWatch(self.top_page, settings.board_push_ms / 1000)
        self._catalog_rows: list[asyncpg.Record] = []
        self._catalog: Catalog = Catalog({})
        self._catalog_at = -CATALOG_TTL_S
        self._rarity: dict[str, tuple[float, dict[str, Any]]] = {}
        self.heap = HeapFreezer()
        self._started = False
        self._lock = asyncio.Lock()

    async def ready(self) -> Runtime:
        if not self._started:
            self.loop_lag.start()
            async with self._lock:
                if not self._started:
                    s = self.settings
                    self.pool = await create_pool(s.database_url or "", max_size=s.db_pool_max,
                                                  timeout_s=s.db_timeout_s)
                    self.redis = aioredis.from_url(s.redis_url or "", client_name=f"{s.redis_prefix}gateway",
                                                   socket_timeout=s.redis_timeout_s,
                                                   socket_connect_timeout=s.redis_timeout_s)
                    self.limits = RateLimits(s.redis_url or "", s.redis_prefix, s.rate_limits())
                    self.keys = KeyCache(self.pool, ttl_s=s.api_key_cache_s, max_keys=s.api_key_cache_size)
                    self.hub = PushHub(self.redis, s.redis_prefix, presence_ttl_s=s.presence_ttl_s,
                                       backlog=s.push_backlog_max, on_drain=self.drain, replica=self.replica)
                    await self.hub.start()
                    self._metrics_task = asyncio.ensure_future(self._export_metrics())
                    self._metrics_task.add_done_callback(log_failure)
                    if s.gateway_gc_freeze_s:
                        self._gc_task = asyncio.ensure_future(supervise("gc freeze", self._freeze_heap))
                    self._started = True
        return self

    async def _export_metrics(self) -> None:
        """This replica's socket gauges (podium/telemetry/metrics.py), and its loop lag for
        `podium status` (Redis: the status driver cannot call a replica), every METRICS_S."""
        while True:
            replica = self.hub.replica
            try:
                metrics.gauge("podium_sockets_open", self.hub.sockets, kind="player", replica=replica)
                boards = self.boards.watchers
                metrics.gauge("podium_sockets_open", boards, kind="board", replica=replica)
                metrics.gauge("podium_sockets_open", self.admission.open - self.hub.sockets - boards, kind="ingest",
                              replica=replica)
            except Exception:
                log.warning("socket gauges not exported", exc_info=True)
            try:
                key = loop_key(self.settings.redis_prefix)
                async with self.redis.pipeline(transaction=False) as pipe:
                    pipe.hset(key, replica, orjson.dumps({**self.loop_lag.status(), "plane": self.plane}))
                    pipe.expire(key, LOOP_KEY_TTL_S)
                    await pipe.execute()
            except Exception as exc:
                log.warning("loop lag not written to Redis (%r)", exc)
            await asyncio.sleep(METRICS_S)

    async def _freeze_heap(self) -> None:
        """podium/gateway/heap.py, every gateway_gc_freeze_s; a compaction at start and
        then every gateway_gc_compact_s."""
        s = self.settings
        compacted = time.monotonic() - s.gateway_gc_compact_s  # the first step compacts: the start-up heap
        while True:
            compact = time.monotonic() - compacted >= s.gateway_gc_compact_s
            self.heap.step(compact)
            if compact:
                compacted = time.monotonic()
            await asyncio.sleep(s.gateway_gc_freeze_s)

    def drain(self) -> None:
        """Refuse new sockets, have the open ones close with 1012, and report
        how many are still open until none is (`podium up` waits for that)."""
        self.admission.draining = True
        self.draining.set()
        task = asyncio.ensure_future(self._report_draining())
        task.add_done_callback(log_failure)

    async def _report_draining(self) -> None:
        key = draining_key(self.settings.redis_prefix)
        while True:
            open_now = self.admission.open
            async with self.redis.pipeline(transaction=False) as pipe:
                pipe.hset(key, self.hub.replica, open_now)
                pipe.expire(key, 60)
                await pipe.execute()
            if not open_now:
                return
            await asyncio.sleep(0.05)

    async def stop(self) -> None:
        await self.loop_lag.stop()
        if self._started:
            self._metrics_task.cancel()
            if hasattr(self, "_gc_task"):
                self._gc_task.cancel()
            await self.boards.stop()
            await self.hub.stop()
            for channel in [*self.channels.values(), *self.ingest_channels.values()]:
                await channel.close()
            await self.pool.close()
            await self.redis.aclose()

    async def _send(self, shard: int, batch: UnlockBatch) -> AckBatch:
        """One batch over the shard's ingest channel (podium/transport/channel.py), not a Ray call."""
        columns: list[object] = [batch.player_ids, batch.game_ids, batch.achievement_ids, batch.regions,
                                 batch.client_at_us, self.settings.player_shards]
        if batch.has_stats:  # after the shard count: the layout of before stays a valid prefix
            columns += [batch.stat_ids, batch.ops, batch.values, batch.event_ids]
        statuses, reasons = await self._player_channel(shard).call("ingest", columns)
        return AckBatch([_STATUS[s] for s in statuses], reasons)

    def _player_channel(self, shard: int) -> Channel:
        to = self.ingest_channels.get(shard)
        if to is None:
            to = self.ingest_channels[shard] = Channel(
                asking(lambda: directory.player_shard(self.settings, shard).ingest_address.remote()),
                name=f"player shard {shard}", connect_timeout_s=self.settings.actor_call_timeout_s,
                key=self.channel_key)
        return to

    async def _query(self, shard: int, reads: list[Read]) -> list[Answer]:
        """Reads go over the shard's read channel, not as a Ray call each."""
        channel = self.channels.get(shard)
        if channel is None:
            channel = self.channels[shard] = ReadChannel(
                asking(lambda: directory.leaderboard_shard(self.settings, shard).read_address.remote()),
                name=f"leaderboard shard {shard}", connect_timeout_s=self.settings.actor_call_timeout_s,
                key=self.channel_key)
        return await channel.send(reads)

    async def top_page(self, key: Key) -> Any:
        """A board's top page as plain JSON values (for podium/gateway/board_watch.py and the board page)."""
        base, region, period, top = key  # base: a game, or a stat board's `game/board`
        page = await self.board_read(game_of(base), "page", self.board(base, period, False), region, top, None)
        return orjson.loads(orjson.dumps(page))  # the channel hands JSON over as an orjson.Fragment

    async def board_read(self, game_id: str, kind: str, *args: Any, alone: bool = False) -> Any:
        """A leaderboard read (podium/core/board_reads.py), batched with others bound for the same shard."""
        return await self.reads.read(shard_of(game_id, self.settings.leaderboard_shards), kind, *args, alone=alone)

    async def friends_of(self, player_id: str) -> list[str]:
        """A player's mutual friends, from their player shard's channel (no Ray
        call per read), within actor_call_timeout_s (then ShardUnavailable)."""
        friends: list[str] = await self.call(self._player_channel(shard_of(player_id, self.settings.player_shards))
                                             .call("friends", player_id))
        return friends

    async def call(self, ref: Any) -> Any:
        """An actor call's (or channel call's) result within actor_call_timeout_s; past it ShardUnavailable
        (HTTP 503)."""
        try:
            return await asyncio.wait_for(ref, self.settings.actor_call_timeout_s)
        except TimeoutError as exc:
            raise ShardUnavailable(f"a shard did not answer within {self.settings.actor_call_timeout_s:g}s; "
                                   "retry shortly") from exc

    def player_shard(self, player_id: str) -> Any:
        return directory.player_shard(self.settings, shard_of(player_id, self.settings.player_shards))

    def leaderboard_shard(self, game_id: str) -> Any:
        return directory.leaderboard_shard(self.settings, shard_of(game_id, self.settings.leaderboard_shards))

    async def catalog(self) -> tuple[Catalog, list[asyncpg.Record]]:
        if time.monotonic() - self._catalog_at > CATALOG_TTL_S:
            async with self.pool.acquire() as conn:
                self._catalog_rows = await catalog_store.read_catalog(conn)
                self._catalog = Catalog.from_rows(  # with stats and boards: the stat board reads need them
                    self._catalog_rows, await catalog_store.read_stats(conn),
                    await catalog_store.read_stat_boards(conn), await catalog_store.read_seasons(conn))
            self._catalog_at = time.monotonic()
        return self._catalog, self._catalog_rows

    async def rarity(self, game_id: str) -> dict[str, Any]:
        """Achievement rarity of a game, recounted from the journal at most every RARITY_TTL_S."""
        hit = self._rarity.get(game_id)
        if hit is None or time.monotonic() - hit[0] > RARITY_TTL_S:
            async with self.pool.acquire() as conn:
                rows = await catalog_store.read_rarity(conn, game_id)
            players = rows[0]["players"] if rows else 0
            body = {"game_id": game_id, "players": players, "achievements": [
                {"achievement_id": r["achievement_id"], "name": r["name"], "points": r["points"],
                 "holders": r["holders"], "percent": round(100.0 * r["holders"] / players, 2) if players else 0.0}
                for r in rows]}
            hit = self._rarity[game_id] = (time.monotonic(), body)
        return hit[1]

    async def require_game(self, game_id: str) -> None:
        catalog, _ = await self.catalog()  # a new game shows within CATALOG_TTL_S
        if game_id != ALL_GAMES and not catalog.has_game(game_id):
            raise UnknownGame(f"no game {game_id!r} in the catalog")

    async def stat_board(self, game_id: str, board: str, period: str, previous: bool, season: str | None) -> str:
        """The board id of a read of a catalog stat board: all-time, the current
        or previous day or week (those the board keeps), or a season (`season`,
        else the one open now)."""
        catalog, _ = await self.catalog()
        held = catalog.boards.get(game_id, {}).get(board)
        if held is None:
            raise UnknownBoard(f"game {game_id!r} has no stat board {board!r}")
        base = stat_board_id(game_id, board)
        if period != SEASON:
            if season is not None:
                raise InvalidRequest("season applies to period=season")
            if period not in held.periods:
                raise UnknownBoard(f"stat board {board!r} keeps periods {', '.join(held.periods)}, not {period!r}")
            return self.board(base, period, previous)
        if previous:
            raise InvalidRequest("previous applies to day and week boards; name the season instead")
        if season is None:
            at = now_us()
            season = next((s for s, start, end in held.seasons if start <= at < end), None)
            if season is None:
                raise UnknownSeason(f"no season of stat board {board!r} is open now; name one with season=")
        elif all(s != season for s, _, _ in held.seasons):
            raise UnknownSeason(f"stat board {board!r} has no season {season!r}")
        return season_board_id(base, season)

    def board(self, game_id: str, period: str, previous: bool) -> str:
        """The board a read is about: all-time, or the current or previous day or week."""
        if period == ALL_TIME:
            if previous:
                raise InvalidRequest("previous applies to day and week boards")
            return game_id
        if game_id == ALL_GAMES:
            raise InvalidRequest("the all-games board is all-time only")
        at = now_us()
        start = self.clock.previous(period, at) if previous else self.clock.current(period, at)
        return board_id(game_id, period, start)
