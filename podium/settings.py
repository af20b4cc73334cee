"""The one settings object (env prefix PODIUM_). Built once by the CLI or test
driver and handed, frozen, to every actor and gateway replica."""
from __future__ import annotations

import hashlib
import hmac
import secrets
from pathlib import Path

from limits import parse_many
from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

_PLACEHOLDER_SECRETS = {"", "changeme", "secret", "dev"}
DELIVERY_CHUNK_PAIRS_MAX = 4096  # podium/core/delivery.py keeps it next to the byte limit of a delivery call
PENDING_UNLOCKS_MAX = 50_000  # default of pending_unlocks_max (podium/core/journal_pipeline.py)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="PODIUM_", frozen=True)

    environment: str = Field("development", description="development | production (refuses weak secrets)")
    data_dir: Path = Field(Path(".podium"), description="Embedded servers' data and local secrets live here")
    database_url: str | None = Field(None, description="PostgreSQL URL; unset starts an embedded server in data_dir")
    redis_url: str | None = Field(None, description="Redis URL; unset starts an embedded server in data_dir")
    redis_prefix: str = Field("podium:", description="Prefix of every Redis key and channel Podium uses")
    token_secret: str | None = Field(None, description="HS256 secret for player tokens; unset: data_dir/token_secret")
    token_previous_secrets: str = Field("", description="Comma-separated secrets still accepted (not signed with) "
                                        "while token_secret rotates; empty once old tokens expired")
    token_issuer: str = Field("podium", description="`iss` of minted player tokens; others are refused")
    token_audience: str = Field("podium", description="`aud` of minted player tokens; others are refused")
    host: str = Field("127.0.0.1", description="Gateway bind address")
    port: int = Field(8000, description="Gateway HTTP/WebSocket port")
    haproxy_stats_port: int = Field(8404, description="Serve's HAProxy stats page (one per machine)")
    haproxy_metrics_port: int = Field(9101, description="Serve's HAProxy Prometheus metrics (one per machine)")
    haproxy_admin_host: str = Field("127.0.0.1", description="Address HAProxy's stats page and metrics bind "
                                    "(0.0.0.0: every interface, for a scraper on another machine)")
    serve_fallback_port: int = Field(8500, description="Serve's fallback proxy on the head node (HAProxy sends "
                                     "it what no replica route matches); one per machine")
    replica_ports: str = Field("30000-31000", pattern=r"^\d+-\d+$", description="Ports the gateway replicas "
                               "listen on behind HAProxy (first-last); two clusters on one machine take "
                               "ranges of their own")
    stop_timeout_s: float = Field(15.0, gt=0, description="`podium up` stops within this: sockets drained, "
                                  "Serve and Ray shut down, embedded servers stopped; what is left then is killed")
    ray_address: str | None = Field(None, description="Existing Ray cluster to join; unset starts a local one")
    metrics_port: int | None = Field(None, description="Port of the local Ray node's metrics agent (Prometheus "
                                     "text at /metrics) when Podium starts the cluster; unset: Ray picks one")
    ray_namespace: str = Field("podium", description="Ray namespace of Podium's named actors")
    player_shards: int = Field(2, ge=1, le=1024, description="Player shard actors (stable hash of player_id)")
    leaderboard_shards: int = Field(1, ge=1, le=1024, description="Leaderboard shard actors (stable hash of game_id)")
    split_planes: bool = Field(True, description="The gateway as two Serve deployments on one port: the socket "
                               "plane (/v1/ws/...: pushes, acks, board and query sockets; gateway_* replicas) and "
                               "the HTTP plane (the rest; http_* replicas), so reads cannot stall pushes and acks. "
                               "False: one deployment serves both (gateway_* replicas)")
    gateway_replicas: int = Field(1, ge=1, description="Serve replicas of the socket plane (of the whole gateway "
                                  "without split_planes): the least, with autoscaling")
    gateway_max_replicas: int | None = Field(None, ge=1, description="Set above gateway_replicas: Serve autoscales "
                                             "the gateway between the two on ongoing requests (sockets count)")
    gateway_target_ongoing: float = Field(2000.0, gt=0, description="Autoscaling: ongoing requests (open sockets "
                                          "plus HTTP in flight) per replica Serve aims for")
    gateway_upscale_delay_s: float = Field(30.0, ge=0, description="Autoscaling: load above target this long "
                                           "adds replicas")
    gateway_downscale_delay_s: float = Field(600.0, ge=0, description="Autoscaling: load below target this long "
                                             "removes replicas (their sockets close and reconnect elsewhere)")
    http_replicas: int = Field(1, ge=1, description="Serve replicas of the HTTP plane (split_planes): the least, "
                               "with autoscaling")
    http_max_replicas: int | None = Field(None, ge=1, description="Set above http_replicas: Serve autoscales the "
                                          "HTTP plane between the two on requests in flight")
    http_target_ongoing: float = Field(32.0, gt=0, description="HTTP plane autoscaling: requests in flight per "
                                       "replica Serve aims for")
    http_upscale_delay_s: float = Field(10.0, ge=0, description="HTTP plane autoscaling: load above target this "
                                        "long adds replicas")
    http_downscale_delay_s: float = Field(120.0, ge=0, description="HTTP plane autoscaling: load below target "
                                          "this long removes replicas (no socket is closed by it)")
    max_sockets_per_replica: int = Field(10_000, ge=1, description="WebSockets (player and ingest) one gateway "
                                         "replica takes (less if the node's nofile limit cannot carry them); "
                                         "past it a handshake gets 503 + Retry-After at once")
    max_sockets_per_player: int = Field(4, ge=1, description="Player sockets per player per replica; past it 503")
    max_http_in_flight: int = Field(256, ge=1, description="HTTP requests a replica runs at once besides its "
                                    "sockets (Serve max_ongoing_requests = sockets + this)")
    push_window_ms: float = Field(50.0, ge=0, description="A player socket gets at most one push frame per window; "
                                  "what arrives meanwhile is merged into it")
    push_backlog_max: int = Field(1000, ge=1, description="Pushes waiting (merged) for one socket before it is "
                                  "closed as a slow consumer (1013)")
    socket_send_timeout_s: float = Field(10.0, gt=0, description="A frame the client does not take within this "
                                         "(a push, a board frame, an ingest ack) closes the socket as a slow "
                                         "consumer (1013)")
    batch_window_ms: float = Field(2.0, ge=0, description="Gateway micro-batch window per player shard")
    max_frame_items: int = Field(1000, ge=1, description="Unlocks per frame or POST body; more is refused whole")
    max_frame_bytes: int = Field(1_048_576, ge=1024, description="Bytes per frame or POST body; more is refused whole")
    max_pending_per_shard: int = Field(50_000, ge=1, description="Unlocks queued per shard per replica")
    max_ack_delay_s: float = Field(1.0, gt=0, description="While a player shard's calls take longer than this, "
                                   "new unlocks for it are acked `overloaded` at once (bounds ack latency)")
    max_batch_items: int = Field(5000, ge=1, description="Unlocks per actor call")
    call_deadline_s: float = Field(30.0, gt=0, description="How long the gateway retries a shard that is restarting")
    actor_call_timeout_s: float = Field(10.0, gt=0, description="Deadline of one actor call (gateway -> actor reads "
                                        "and friend lists, each ingest attempt, player -> leaderboard delivery and "
                                        "pass detection)")
    db_timeout_s: float = Field(10.0, gt=0, description="Deadline of one PostgreSQL statement (asyncpg "
                                "command_timeout), outside recovery")
    redis_timeout_s: float = Field(5.0, gt=0, description="Deadline of one Redis command (socket timeout of "
                                   "every Podium Redis client); pub/sub reads use their own shorter waits")
    season_close_grace_s: float = Field(30.0, ge=0, description="A stat board's season is closed (its final "
                                        "standings kept) this long after its end: an update made before the end "
                                        "may still be committing (up to db_timeout_s)")
    season_close_timeout_s: float = Field(120.0, gt=0, description="Deadline of one season's close (reading "
                                          "its journal rows, ranking, writing its standings); a close that fails "
                                          "or overruns is retried after a backoff (5 s doubling to 5 min), the "
                                          "other seasons go on")
    recovery_timeout_s: float = Field(300.0, gt=0, description="Deadline of one recovery read (checkpoint and "
                                      "journal tail of a shard)")
    api_key_cache_s: float = Field(30.0, gt=0, description="How long a replica trusts a verified API key; a revoked "
                                   "key stops working (sockets too) within this")
    api_key_cache_size: int = Field(10_000, ge=1, description="Keys (good and bad) cached per replica")
    presence_resync_s: float = Field(10.0, gt=0, description="Actors re-read who is online this often (heals "
                                     "presence lost in a Redis restart)")
    presence_ttl_s: float = Field(30.0, gt=0, description="A gateway replica silent this long is dead: its "
                                  "players count as offline")
    read_batch_window_ms: float = Field(1.0, ge=0, description="Gateway gathers leaderboard reads for one shard "
                                       "this long into one actor call")
    max_read_batch: int = Field(512, ge=1, description="Reads per leaderboard actor call (flushes early; also "
                                "before the reads' bytes would pass the shard's request cap, read_wire.MAX_REQUEST)")
    max_pending_reads: int = Field(10_000, ge=1, description="Reads waiting per leaderboard shard per replica "
                                   "before `overloaded` (429)")
    channel_host: str | None = Field(None, description="Address the shards' channels (reads, ingest, deliveries) "
                                     "bind; their callers connect to it. Unset: the node's IP as Ray knows it")
    max_socket_queries: int = Field(64, ge=1, description="Query frames in flight per socket; more wait in TCP")
    delivery_backlog_max: int = Field(20_000, ge=1, description="Scores a player shard holds for one leaderboard "
                                      "shard (journaled, not yet delivered); past it its new unlocks bound for "
                                      "that shard are answered `overloaded` at once (bounds memory and rank "
                                      "staleness); unlocks for games on other shards go on")
    pending_unlocks_max: int = Field(PENDING_UNLOCKS_MAX, ge=1, description="Unlocks a player shard queues for "
                                     "its next journal write; past it a batch is answered `overloaded` at once (a slow "
                                     "write or settle would otherwise queue every resend again)")
    delivery_chunk_pairs: int = Field(DELIVERY_CHUNK_PAIRS_MAX, ge=1, le=DELIVERY_CHUNK_PAIRS_MAX,
                                      description="(player, game) pairs per delivery call to a leaderboard shard; "
                                      "a larger backlog is sent in several calls")
    checkpoint_interval_s: float = Field(2.0, gt=0, description="Seconds between actor checkpoints")
    period_reset_hour: int = Field(0, ge=0, le=23, description="UTC hour at which daily and weekly boards reset")
    public_cache_s: int = Field(1, ge=0, description="Cache-Control max-age of public reads (boards, ranks, the "
                                "catalog): how stale a browser or CDN may show them; ETags answer repeats 304")
    page_limit_max: int = Field(200, ge=1, description="Largest leaderboard page")
    token_ttl_s: int = Field(7 * 24 * 3600, ge=60, description="Lifetime of minted player tokens")
    token_refresh_max_s: int = Field(30 * 24 * 3600, ge=60, description="A player may refresh their own token "
                                     "until this long after a game server last minted one for them")
    friends_max: int = Field(1000, ge=1, le=10_000, description="Friend edges per player (friends and pending "
                             "invites; blocks do not count); a change past it is refused `friend_limit`")
    friend_fanout_max: int = Field(1000, ge=1, description="Online friends one event is pushed to at most "
                                   "(friend.unlocked, friend.passed_you); the rest hear nothing of that event")
    inbox_max: int = Field(100, ge=1, description="Inbox items kept per player (the newest)")
    inbox_days: int = Field(30, ge=1, description="Inbox items older than this are dropped")
    inbox_top_n: int = Field(10, ge=1, le=1000, description="Losing a place in a game's all-time global top N "
                             "puts `rank.lost_top` in the player's inbox")
    db_pool_max: int = Field(4, ge=1, description="asyncpg pool size per process")
    rate_limit_unlocks: str = Field("10000/second", description="Unlocks per API key, every replica together "
                                    "(`limits` notation, e.g. `5000/second;200000/minute`; empty: no limit); past "
                                    "it items are `rejected`/`rate_limited`, a POST gets 429")
    rate_limit_reads: str = Field("200/second", description="HTTP requests per client address (429 past it)")
    rate_limit_player_reads: str = Field("50/second", description="Private reads, friend changes and socket "
                                         "query frames per player token or API key (429 / a `rate_limited` error)")
    rate_limit_handshakes: str = Field("20/second;600/minute", description="WebSocket handshakes per client "
                                       "address (429 + Retry-After past it)")
    trusted_proxy_hops: int = Field(0, ge=0, le=10, description="Load balancers in front of Serve that append "
                                    "X-Forwarded-For; the address the outermost appended is the client's. 0: per-"
                                    "address limits (reads, handshakes) are off, as every client looks alike")
    board_push_ms: float = Field(500.0, ge=50, description="A watched board (/v1/ws/boards) is re-read this often "
                                 "per replica; its watchers get a frame only when its top N changed")
    board_top_max: int = Field(100, ge=1, le=200, description="Largest top N a board socket may watch")
    loop_lag_interval_ms: float = Field(100.0, ge=10, le=10_000, description="Every gateway replica and shard "
                                        "times a timer this often on its event loop: how late it fires is the loop "
                                        "lag (`podium status`, podium_loop_lag_seconds)")
    loop_stall_ms: float = Field(200.0, gt=0, description="A loop lag this long or longer is a stall: counted, and "
                                 "logged (LOOP_STALL) with what the loop was running and how much of it was GC")
    loop_stall_log_s: float = Field(10.0, ge=0, description="At most one LOOP_STALL line per process this often; "
                                    "the next says how many stalls were left out")
    gateway_gc_freeze_s: float = Field(5.0, ge=0, description="A gateway replica collects its young objects and "
                                       "freezes the survivors out of the cyclic GC this often "
                                       "(podium/gateway/heap.py), so a full collection never walks every open "
                                       "socket; 0: Python's default GC")
    gateway_gc_compact_s: float = Field(3600.0, gt=0, description="This often the replica unfreezes and collects "
                                        "its whole heap once: the cyclic garbage frozen meanwhile (closed sockets "
                                        "left ~1 object each); one pause as long as a full collection")
    socket_idle_s: float = Field(120.0, gt=0, description="A socket whose client sends nothing (no frame, no "
                                 "`ping`) this long is closed (1001); clients ping every socket_idle_s / 4")

    @field_validator("rate_limit_unlocks", "rate_limit_reads", "rate_limit_player_reads", "rate_limit_handshakes")
    @classmethod
    def _readable_limit(cls, spec: str) -> str:
        if spec.strip():
            parse_many(spec)  # a ValueError names what the `limits` notation cannot read
        return spec

    def rate_limits(self) -> dict[str, str]:
        return {"unlocks": self.rate_limit_unlocks, "reads": self.rate_limit_reads,
                "player_reads": self.rate_limit_player_reads, "handshakes": self.rate_limit_handshakes}

    @model_validator(mode="after")
    def _refuse_weak_secret_in_production(self) -> Settings:
        if self.environment == "production" and (self.token_secret or "") in _PLACEHOLDER_SECRETS:
            raise ValueError("PODIUM_TOKEN_SECRET must be set to a strong value in production")
        return self

    def channel_key(self) -> bytes:
        """What a caller presents on a shard's channel (podium/transport/channel.py): derived
        from the token secret, which every process of a cluster shares."""
        return hmac.new(self.resolved_token_secret().encode(), b"podium channel v1", hashlib.sha256).digest()

    def resolved_token_secret(self) -> str:
        """The configured secret, else one generated once and kept in data_dir."""
        if self.token_secret:
            return self.token_secret
        path = self.data_dir / "token_secret"
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(secrets.token_urlsafe(48))
            path.chmod(0o600)
        return path.read_text().strip()
