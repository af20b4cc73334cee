"""`podium`: run the cluster and administer it. Commands that print a secret
print only that secret on stdout (logs go to stderr), so scripts can capture it."""
from __future__ import annotations

import asyncio
import json
import logging
import signal
import sys
import time
from pathlib import Path
from typing import Annotated, Any

import typer

from podium.settings import Settings

app = typer.Typer(help="Podium: real-time achievements, ranks and pushes on Ray.", no_args_is_help=True)
apikey_app = typer.Typer(help="API keys for game servers and clients.", no_args_is_help=True)
catalog_app = typer.Typer(help="The achievement catalog.", no_args_is_help=True)
app.add_typer(apikey_app, name="apikey")
friends_app = typer.Typer(help="The friend graph.", no_args_is_help=True)
app.add_typer(catalog_app, name="catalog")
app.add_typer(friends_app, name="friends")

DataDir = Annotated[Path | None, typer.Option("--data-dir", help="Data dir (default ./.podium or PODIUM_DATA_DIR)")]


def _settings(data_dir: Path | None = None, **overrides: Any) -> Settings:
    if data_dir is not None:
        overrides["data_dir"] = data_dir
    return Settings(**overrides)


def _with_db(settings: Settings, work: Any) -> Any:
    """Run `work(conn)` against the configured or the embedded PostgreSQL."""
    from podium.cluster.embedded import start_postgres
    from podium.persistence.db import create_pool

    url = settings.database_url
    if url is None:
        url, _server = start_postgres(settings.data_dir)  # attaches if `podium up` already runs it

    async def run() -> Any:
        pool = await create_pool(url, max_size=1, timeout_s=settings.recovery_timeout_s)
        try:
            async with pool.acquire() as conn:
                from podium.persistence import migrations

                await migrations.apply(conn)
                return await work(conn)
        finally:
            await pool.close()

    return asyncio.run(run())


@app.command()
def up(port: Annotated[int | None, typer.Option(help="Gateway port")] = None, data_dir: DataDir = None) -> None:
    """Start everything: servers, migrations, Ray, shard actors, the gateway.
    Ctrl-C, SIGTERM or SIGHUP stops it all within PODIUM_STOP_TIMEOUT_S."""
    from podium.cluster.supervisor import supervise

    _log_to_stderr()
    settings = _settings(data_dir, **({"port": port} if port else {}))
    driver = [sys.executable, "-m", "podium.cluster.cli", "run-cluster", "--data-dir", str(settings.data_dir)]
    if port:
        driver += ["--port", str(port)]
    raise typer.Exit(supervise(settings, driver))


def _log_to_stderr() -> None:
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(levelname)s %(message)s")


@app.command("run-cluster", hidden=True)
def run_cluster(port: Annotated[int | None, typer.Option()] = None, data_dir: DataDir = None) -> None:
    """The driver `podium up` runs (podium/cluster/supervisor.py): bring the cluster up,
    serve `podium scale` requests, and on SIGTERM drain and stop it."""
    from podium.cluster.launch import StartFailed, bring_up, serve_scale_requests, tear_down
    from podium.cluster.supervisor import failure_file

    _log_to_stderr()
    stop = False

    def _interrupt(*_: object) -> None:
        raise KeyboardInterrupt  # while starting: unwind, bring_up stops what it started

    def _stop(*_: object) -> None:
        nonlocal stop
        stop = True

    def _on_stop_signals(handler: Any) -> None:
        for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(signum, handler)

    _on_stop_signals(_interrupt)
    settings = _settings(data_dir, **({"port": port} if port else {}))
    try:
        resolved, servers, key = bring_up(settings)
    except KeyboardInterrupt:
        raise typer.Exit(0) from None
    except StartFailed as exc:
        logging.getLogger(__name__).error("podium up could not start", exc_info=exc.__cause__)
        if (path := failure_file()) is not None:
            path.write_text(str(exc))
        raise typer.Exit(1) from exc
    _on_stop_signals(_stop)  # again: ray.init made SIGTERM exit the process at once
    url = f"http://{resolved.host}:{resolved.port}"
    typer.echo(f"""
Podium is up.
  gateway     {url}   (docs: {url}/docs, health: {url}/v1/health)
  live board  {url}/boards   (a page per game: top N, regions, periods, player search)
  dev API key {key}
  player token: .venv/bin/podium token PLAYER_ID
  data dir    {resolved.data_dir.resolve()}
Ctrl-C stops everything; state is kept in the data dir.
""")
    while not stop:
        time.sleep(0.5)
        try:
            resolved = serve_scale_requests(resolved, resolved.redis_url or "")  # `podium scale`
        except Exception:
            logging.getLogger(__name__).exception("a scale request could not be read")
    typer.echo("stopping Podium...", err=True)
    tear_down(servers, resolved)


@app.command()
def scale(
    player_shards: Annotated[int | None, typer.Option(help="Player shard actors from now on")] = None,
    leaderboard_shards: Annotated[int | None, typer.Option(help="Leaderboard shard actors from now on")] = None,
    replicas: Annotated[int | None, typer.Option(help="Socket plane replicas (the gateway's, without "
                                                "split planes) from now on")] = None,
    http_replicas: Annotated[int | None, typer.Option(help="HTTP plane replicas from now on")] = None,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for the answer")] = 300.0,
    data_dir: DataDir = None,
) -> None:
    """Ask the running `podium up` to move to new shard and replica counts.
    Unlocks pause while it happens (docs/operations.md "Resharding")."""
    import uuid

    import redis

    from podium.cluster.launch import scale_key, scale_result_key

    settings = _settings(data_dir)
    url = _redis_url(settings)
    if url is None:
        typer.echo("no running cluster found (no PODIUM_REDIS_URL and no embedded Redis in the data dir)", err=True)
        raise typer.Exit(1)
    wanted = {"player_shards": player_shards, "leaderboard_shards": leaderboard_shards, "replicas": replicas,
              "http_replicas": http_replicas}
    if all(v is None for v in wanted.values()):
        raise typer.BadParameter("say what to scale: --player-shards, --leaderboard-shards, --replicas or "
                                 "--http-replicas")
    if any(v is not None and v < 1 for v in wanted.values()):
        raise typer.BadParameter("counts are at least 1")
    request_id = uuid.uuid4().hex
    client = redis.Redis.from_url(url, socket_timeout=timeout + 5)
    client.lpush(scale_key(settings.redis_prefix), json.dumps({"id": request_id, **wanted}))
    answer = client.blpop([scale_result_key(settings.redis_prefix, request_id)], timeout=int(timeout))
    if answer is None:
        typer.echo(f"no answer within {timeout:g}s: is `podium up` running with this Redis and prefix?", err=True)
        raise typer.Exit(1)
    report = json.loads(answer[1])  # type: ignore[index]
    typer.echo(json.dumps(report))
    if not report.get("ok"):
        raise typer.Exit(1)


@app.command()
def migrate(data_dir: DataDir = None) -> None:
    """Apply pending migrations."""
    from podium.persistence import migrations

    async def work(conn: Any) -> list[str]:
        return await migrations.apply(conn)  # already applied by _with_db; reports nothing new

    _with_db(_settings(data_dir), work)
    typer.echo("migrations up to date", err=True)


@catalog_app.command("import")
def catalog_import(file: Path, data_dir: DataDir = None) -> None:
    """Import (upsert) games, achievements, stats, stat boards and seasons from a JSON file (docs/protocol.md,
    "Stats in the catalog"). A bad file is refused whole: nothing is imported."""
    from podium.cluster.launch import load_catalog_file
    from podium.core.catalog_file import CatalogFileError
    from podium.persistence import catalog_store

    async def work(conn: Any) -> catalog_store.Imported:
        return await catalog_store.import_catalog(conn, games)

    try:
        games = load_catalog_file(file)
        done = _with_db(_settings(data_dir), work)
    except CatalogFileError as exc:
        typer.echo(f"catalog not imported: {exc}", err=True)
        raise typer.Exit(1) from exc
    typer.echo(f"imported {done.games} games, {done.achievements} achievements, {done.stats} stats, "
               f"{done.boards} stat boards, {done.seasons} seasons", err=True)


@friends_app.command("import")
def friends_import(file: Path, data_dir: DataDir = None) -> None:
    """Make friends of every `player_id,friend_id` row of a CSV file (a header
    row naming them is skipped), in one transaction: pairs where one blocks the
    other are skipped; if anyone would pass friends_max, nothing is imported.
    A running cluster's player shards then reload their edges."""
    import csv

    from podium.actors.social import reload_channel
    from podium.core.routing import shard_of
    from podium.persistence import friends

    settings = _settings(data_dir)

    def pairs() -> Any:
        with file.open(newline="") as handle:
            for n, row in enumerate(csv.reader(handle)):
                if n == 0 and row[:2] == ["player_id", "friend_id"]:
                    continue
                if len(row) != 2 or not all(row):
                    raise typer.BadParameter(f"line {n + 1}: want player_id,friend_id, got {row!r}")
                yield row[0].strip(), row[1].strip()

    async def work(conn: Any) -> dict[str, int]:
        try:
            return await friends.import_pairs(conn, pairs(), lambda p: shard_of(p, settings.player_shards),
                                              settings.friends_max)
        except friends.OverCap as exc:
            typer.echo(str(exc), err=True)
            raise typer.Exit(1) from exc

    counts = _with_db(settings, work)
    typer.echo(f"imported {counts['pairs']} pairs ({counts['edges_written']} edges written, "
               f"{counts['blocked_skipped']} pairs skipped: one side blocks the other)", err=True)
    _publish(settings, reload_channel(settings.redis_prefix), b"import")


def _redis_url(settings: Settings) -> str | None:
    """The configured Redis, else the embedded one of a running `podium up` (None if there is none)."""
    if settings.redis_url is not None:
        return settings.redis_url
    sock = settings.data_dir.resolve() / "redis.sock"
    return f"unix://{sock}" if sock.exists() else None


def _publish(settings: Settings, channel: str, message: bytes) -> None:
    """Tell a running cluster (through its Redis) that something changed; no cluster, no-op."""
    import redis

    url = _redis_url(settings)
    if url is None:
        return
    try:
        listeners = redis.Redis.from_url(url, socket_timeout=5).publish(channel, message)
        typer.echo(f"{listeners} player shards told to reload", err=True)
    except redis.RedisError as exc:
        typer.echo(f"no running cluster reached ({exc}); shards load the edges when they start", err=True)


@app.command()
def status(as_json: Annotated[bool, typer.Option("--json", help="One JSON object instead of tables")] = False,
           data_dir: DataDir = None) -> None:
    """Every shard actor (node, queue, delivery backlog, last checkpoint, size,
    event-loop lag) and every gateway replica (player sockets, last heartbeat,
    event-loop lag) of the running cluster (PODIUM_RAY_ADDRESS, default: the
    local one)."""
    from podium.cluster.operations import cluster_status

    settings = _settings(data_dir)
    report = cluster_status(settings, _redis_url(settings))
    if as_json:
        typer.echo(json.dumps(report, default=str))
        return
    from rich.console import Console
    from rich.table import Table

    shards = Table("shard", "ok", "node", "queue", "to deliver", "lag rows", "checkpoint age s", "size", "online",
                   "recovered in s", "loop lag p99/max ms", title="shards")
    for r in report["shards"]:
        size = r.get("players", r.get("entries", ""))
        lag = (r["journaled_seq"] - r["delivered_seq"]) if "journaled_seq" in r else ""
        shards.add_row(r["name"], "yes" if r["ok"] else f"NO: {r.get('error', '')}"[:60], str(r.get("node", "")),
                       str(r.get("pending_batches", "")), str(r.get("to_deliver", "")), str(lag),
                       str(r.get("checkpoint_age_s", "")), str(size), str(r.get("online", "")),
                       f"{r['recovered_in_s']:.2f}" if r.get("recovered_in_s") is not None else "",
                       loop_lag_cell(r.get("loop")))
    replicas = Table("replica", "plane", "player sockets", "heartbeat age s", "loop lag p99/max ms",
                     title="gateway replicas")
    for r in report["replicas"]:
        replicas.add_row(r["replica"], r.get("plane") or "", str(r["player_sockets"]), f"{r['heartbeat_age_s']:.1f}",
                         loop_lag_cell(r.get("loop")))
    console = Console(width=None if sys.stdout.isatty() else 200)  # piped: whole rows, not ellipses
    console.print(shards)
    console.print(replicas)


def loop_lag_cell(loop: dict[str, Any] | None) -> str:
    """`podium status`'s loop lag column: p99/max ms over the last window, and the stalls in it."""
    if not loop:
        return ""
    cell = f"{loop['p99_ms']:.0f}/{loop['max_ms']:.0f}"
    return cell + (f" ({loop['stalls']} stalls)" if loop.get("stalls") else "")


@app.command()
def token(player_id: str, data_dir: DataDir = None) -> None:
    """Print a signed player token for PLAYER_ID (and nothing else)."""
    from podium.gateway.auth import token_keys

    typer.echo(token_keys(_settings(data_dir)).mint(player_id))


@apikey_app.command("revoke")
def apikey_revoke(key: str, data_dir: DataDir = None) -> None:
    """Revoke an API key; gateways stop accepting it within 30 s (their cache)."""
    from podium.persistence import api_keys

    async def work(conn: Any) -> bool:
        return await api_keys.revoke(conn, key)

    if not _with_db(_settings(data_dir), work):
        typer.echo("no such live key", err=True)
        raise typer.Exit(1)
    typer.echo("revoked", err=True)


@app.command()
def watch(
    player_id: str,
    url: Annotated[str, typer.Option(help="Gateway base URL")] = "ws://127.0.0.1:8000",
    seconds: Annotated[float | None, typer.Option(help="Stop after this long (default: until Ctrl-C)")] = None,
    data_dir: DataDir = None,
) -> None:
    """Print PLAYER_ID's live pushes, one JSON object per line (the events of an
    `update` frame each on a line of their own)."""
    import websockets

    from podium.gateway.auth import token_keys

    settings = _settings(data_dir)
    token = token_keys(settings).mint(player_id)

    async def keep_alive(ws: Any) -> None:  # a socket silent for socket_idle_s is closed (4408)
        while True:
            await asyncio.sleep(settings.socket_idle_s / 4)
            await ws.send("ping")

    async def run() -> None:
        async with websockets.connect(f"{url}/v1/ws/players/{player_id}?token={token}") as ws:
            pinger = asyncio.ensure_future(keep_alive(ws))
            try:
                async for message in ws:
                    frame = json.loads(message)
                    if frame.get("type") == "pong":
                        continue
                    for event in frame["events"] if frame.get("type") == "update" else [frame]:
                        typer.echo(json.dumps(event))
            finally:
                pinger.cancel()

    try:
        asyncio.run(asyncio.wait_for(run(), seconds) if seconds else run())
    except (KeyboardInterrupt, TimeoutError):
        pass


@apikey_app.command("create")
def apikey_create(
    game: Annotated[str | None, typer.Option(help="Game the key may write; omit for every game")] = None,
    label: Annotated[str | None, typer.Option(help="A note for operators")] = None,
    data_dir: DataDir = None,
) -> None:
    """Print a new API key (and nothing else). It is stored hashed."""
    from podium.persistence import api_keys

    async def work(conn: Any) -> str:
        if game is not None and not await conn.fetchval("SELECT 1 FROM games WHERE game_id = $1", game):
            raise typer.BadParameter(f"no game {game!r} in the catalog", param_hint="--game")
        return await api_keys.create(conn, game_id=game, label=label)

    typer.echo(_with_db(_settings(data_dir), work))


if __name__ == "__main__":
    app()
