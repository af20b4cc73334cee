"""The `podium` console script and the migrations runner against real PostgreSQL."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import asyncpg
import orjson
import pytest

from podium.gateway.auth import verify_token
from podium.persistence import api_keys, migrations
from tests.integration.conftest import eventually

PODIUM = [sys.executable, "-m", "podium.cluster.cli"]


def run_cli(cluster, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PODIUM_DATABASE_URL": cluster.settings.database_url,
           "PODIUM_TOKEN_SECRET": cluster.settings.token_secret, "PODIUM_DATA_DIR": str(cluster.settings.data_dir)}
    return subprocess.run([*PODIUM, *args], env=env, capture_output=True, text=True, timeout=120)


def test_token_prints_only_a_token_that_verifies(cluster) -> None:
    out = run_cli(cluster, "token", "player-42")
    assert out.returncode == 0, out.stderr
    token = out.stdout.strip()
    assert out.stdout.count("\n") == 1
    verify_token(cluster.settings.token_secret, token, "player-42")


async def test_apikey_create_prints_only_a_working_key(cluster, db) -> None:
    out = run_cli(cluster, "apikey", "create", "--game", "arena")
    assert out.returncode == 0, out.stderr
    key = out.stdout.strip()
    async with db.acquire() as conn:
        assert await api_keys.lookup(conn, key) == "arena"
        stored = await conn.fetchval("SELECT count(*) FROM api_keys WHERE key_hash = $1", key)
    assert stored == 0  # only its hash is stored


def test_apikey_for_an_unknown_game_fails_and_prints_no_key(cluster) -> None:
    out = run_cli(cluster, "apikey", "create", "--game", "no-such-game")
    assert out.returncode != 0 and out.stdout == "" and "no-such-game" in out.stderr


async def test_catalog_import_adds_achievements_without_restart(cluster, http, api_key, uid, tmp_path) -> None:
    file = tmp_path / "catalog.json"
    file.write_text('{"games": [{"game_id": "racer", "name": "Racer", "achievements": '
                    '[{"achievement_id": "lap", "name": "Lap", "points": 3}]}]}')
    out = run_cli(cluster, "catalog", "import", str(file))
    assert out.returncode == 0 and "1 games, 1 achievements" in out.stderr
    p = uid("racer")

    async def accepted() -> bool:
        body = [{"player_id": p, "game_id": "racer", "achievement_id": "lap"}]
        response = await http.post("/v1/unlocks", headers={"X-API-Key": api_key}, content=orjson.dumps(body))
        return response.json()[0]["status"] in ("accepted", "duplicate")

    await eventually(accepted, timeout=10)
    rank = await eventually(lambda: http.get(f"/v1/games/racer/players/{p}/rank"), timeout=10)
    assert rank.json()["points"] == 3


async def test_migrations_apply_once_and_refuse_an_edited_file(cluster, tmp_path: Path) -> None:
    conn = await asyncpg.connect(cluster.settings.database_url)
    try:
        assert await migrations.apply(conn) == []  # the session already applied them
        edited = tmp_path / "migrations"
        shutil.copytree(migrations.MIGRATIONS_DIR, edited)
        first = sorted(edited.glob("*.sql"))[0]
        first.write_text(first.read_text() + "\n-- edited\n")
        with pytest.raises(migrations.MigrationError, match="edited after it was applied"):
            await migrations.apply(conn, edited)
    finally:
        await conn.close()


async def test_watch_prints_a_players_pushes(cluster, http, api_key, uid) -> None:
    import asyncio

    p = uid("watched")
    env = {**os.environ, "PODIUM_TOKEN_SECRET": cluster.settings.token_secret}
    proc = await asyncio.create_subprocess_exec(
        *PODIUM, "watch", p, "--url", cluster.ws_url, "--seconds", "8", env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    assert proc.stdout is not None
    first = await asyncio.wait_for(proc.stdout.readline(), 30)
    assert orjson.loads(first) == {"type": "subscribed", "player_id": p}
    await http.post("/v1/unlocks", headers={"X-API-Key": api_key},
                    content=orjson.dumps([{"player_id": p, "game_id": "arena", "achievement_id": "a1"}]))
    second = await asyncio.wait_for(proc.stdout.readline(), 5)
    assert orjson.loads(second)["type"] == "unlock.accepted"
    proc.kill()
    await proc.wait()


async def test_apikey_revoke_revokes_once_and_says_so(cluster, db) -> None:
    key = run_cli(cluster, "apikey", "create").stdout.strip()
    out = run_cli(cluster, "apikey", "revoke", key)
    again = run_cli(cluster, "apikey", "revoke", key)
    assert out.returncode == 0 and again.returncode == 1 and "no such live key" in again.stderr
    async with db.acquire() as conn:
        with pytest.raises(api_keys.KeyNotFound):
            await api_keys.lookup(conn, key)
