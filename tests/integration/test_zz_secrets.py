"""Secrets stay secret. Named to run last: it sends credentials, good and
bad, every way a client can (headers, query strings, sockets), then reads
every log file of the whole run (Ray's session logs: the gateway replicas,
the shard actors, Serve, HAProxy; the embedded servers' logs in the data
dir) and every problem body it got, looking for any API key, token or the
token secret."""
from __future__ import annotations

from pathlib import Path

import httpx
import orjson
import ray
import websockets

from podium.gateway.auth import mint_token
from podium.persistence import api_keys


def log_files(*roots: Path) -> list[Path]:
    return [p for root in roots if root.exists() for p in root.rglob("*") if p.is_file() and p.stat().st_size]


async def test_no_key_token_or_secret_appears_in_logs_or_problem_details(cluster, http, api_key, db, uid) -> None:
    p = uid("secret")
    secret = cluster.settings.token_secret
    token = mint_token(secret, p, 600)
    forged = mint_token("not-the-secret-but-long-enough-for-hs256", p, 600)
    other = mint_token(secret, uid("someone-else"), 600)
    async with db.acquire() as conn:
        revoked = await api_keys.create(conn, game_id=None, label="secrets: revoked")
        assert await api_keys.revoke(conn, revoked)
    wrong_key = f"{api_key[:-4]}XXXX"
    answers: list[httpx.Response] = []
    unlock = orjson.dumps([{"player_id": p, "game_id": "arena", "achievement_id": "a1"}])
    for key in (api_key, wrong_key, revoked):
        answers.append(await http.post("/v1/unlocks", headers={"X-API-Key": key}, content=unlock))
        answers.append(await http.post(f"/v1/unlocks?api_key={key}", content=b"[{]"))  # malformed too
        answers.append(await http.get(f"/v1/players/{p}/dashboard", params={"api_key": key}))
    for bearer in (token, forged, other, f"{token}x"):
        answers.append(await http.get(f"/v1/players/{p}/inbox", headers={"Authorization": f"Bearer {bearer}"}))
        answers.append(await http.get(f"/v1/players/{p}/history", params={"token": bearer, "days": 3}))
        answers.append(await http.post(f"/v1/players/{p}/token", headers={"Authorization": f"Bearer {bearer}"}))
        try:
            async with websockets.connect(f"{cluster.ws_url}/v1/ws/players/{p}?token={bearer}") as ws:
                await ws.recv()
                await ws.send(orjson.dumps({"q": "dashboard", "id": 1, "player_id": f"{p}-x", "token": bearer}))
                await ws.recv()
        except websockets.InvalidStatus as exc:
            assert exc.response.status_code == 403
    for key in (wrong_key, revoked):
        try:
            async with websockets.connect(f"{cluster.ws_url}/v1/ws/ingest?api_key={key}"):
                pass
        except websockets.InvalidStatus as exc:
            assert exc.response.status_code == 403
    minted = (await http.post(f"/v1/players/{p}/token", headers={"X-API-Key": api_key})).json()["token"]
    secrets = {"API key": api_key, "wrong API key": wrong_key, "revoked API key": revoked, "token": token,
               "forged token": forged, "another player's token": other, "minted token": minted,
               "token secret": secret, "channel key": cluster.settings.channel_key().hex()}
    for response in answers:
        if response.status_code >= 400:
            for name, value in secrets.items():
                assert value not in response.text, f"{name} in a problem body: {response.text}"
    session = Path(ray._private.worker._global_node.get_session_dir_path())  # Ray has no public way to it
    files = log_files(session / "logs", cluster.settings.data_dir)
    assert any("ServeReplica" in f.name or "worker" in f.name for f in files), "found the replicas' logs"
    leaks = []
    for path in files:
        data = path.read_bytes()
        leaks += [f"{name} in {path}" for name, value in secrets.items() if value.encode() in data]
    assert not leaks, leaks
