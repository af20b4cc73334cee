"""ray_cluster.yaml is a cluster-launcher config Ray itself accepts: its
JSON schema (shipped with Ray) and the launcher's own validation, after the
defaults `ray up` fills in."""
from __future__ import annotations

import copy
import importlib
import json
from pathlib import Path

import jsonschema
import pytest
import ray.autoscaler
import yaml
from ray.autoscaler._private.util import prepare_config, validate_config

from podium.cluster.launch import serve_env
from podium.gateway.app import (
    APP_NAME,
    BOTH,
    HTTP,
    SOCKET_PREFIX,
    SOCKETS,
    SOCKETS_APP_NAME,
    build_app,
    gateway_apps,
    in_socket_plane,
    serve_options,
)
from podium.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = json.loads((Path(ray.autoscaler.__file__).parent / "ray-schema.json").read_text())


def config() -> dict:
    return yaml.safe_load((ROOT / "ray_cluster.yaml").read_text())


def test_the_cluster_config_passes_rays_schema_and_launcher_validation() -> None:
    jsonschema.validate(config(), SCHEMA)
    validate_config(prepare_config(config()))


def test_the_schema_check_can_fail() -> None:
    typo = copy.deepcopy(config())
    typo["worker_start_ray_command"] = typo.pop("worker_start_ray_commands")  # singular: not a launcher key
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(typo, SCHEMA)


def test_gateway_replicas_are_fixed_unless_a_maximum_is_set() -> None:
    fixed = serve_options(Settings(gateway_replicas=2))
    assert fixed["num_replicas"] == 2 and "autoscaling_config" not in fixed
    scaled = serve_options(Settings(gateway_replicas=2, gateway_max_replicas=6, gateway_target_ongoing=500))
    assert "num_replicas" not in scaled
    assert scaled["autoscaling_config"] == {"min_replicas": 2, "initial_replicas": 2, "max_replicas": 6,
                                            "target_ongoing_requests": 500.0, "upscale_delay_s": 30.0,
                                            "downscale_delay_s": 600.0}
    assert scaled["max_ongoing_requests"] == fixed["max_ongoing_requests"]


def test_each_plane_has_its_own_replicas_and_autoscaling() -> None:
    s = Settings(gateway_replicas=3, http_replicas=1, http_max_replicas=4, http_target_ongoing=16,
                 max_sockets_per_replica=5000, max_http_in_flight=200)
    sockets, http = serve_options(s), serve_options(s, HTTP)
    assert sockets["num_replicas"] == 3 and sockets["max_ongoing_requests"] == 5200
    assert http["max_ongoing_requests"] == 200 and "num_replicas" not in http
    assert http["autoscaling_config"] == {"min_replicas": 1, "initial_replicas": 1, "max_replicas": 4,
                                         "target_ongoing_requests": 16.0, "upscale_delay_s": 10.0,
                                         "downscale_delay_s": 120.0}


def test_the_planes_split_the_routes_by_path_and_share_the_port() -> None:
    planes = {p.name: p.route_prefix for p in gateway_apps(Settings(token_secret="unit-test-secret"))}
    assert planes == {APP_NAME: "/", SOCKETS_APP_NAME: SOCKET_PREFIX}
    paths = {plane: {getattr(r, "path", "") for r in build_app(plane).routes} for plane in (HTTP, SOCKETS, BOTH)}
    assert {"/v1/ws/players/{player_id}", "/v1/ws/boards/{game_id}", "/v1/ws/ingest", "/v1/ws/health"} <= paths[SOCKETS]
    assert all(in_socket_plane(p) for p in paths[SOCKETS])
    assert {"/v1/unlocks", "/v1/health", "/v1/games/{game_id}/players/{player_id}/rank", "/boards/{game_id}",
            "/docs"} <= paths[HTTP]
    assert not any(in_socket_plane(p) for p in paths[HTTP])
    assert paths[BOTH] == paths[HTTP] | paths[SOCKETS]
    one = gateway_apps(Settings(token_secret="unit-test-secret", split_planes=False))
    assert [(p.name, p.route_prefix) for p in one] == [(APP_NAME, "/")]


def test_the_rayservice_manifest_carries_a_valid_serve_config() -> None:
    from ray.serve.schema import ServeDeploySchema

    manifest = yaml.safe_load((ROOT / "deploy" / "rayservice.yaml").read_text())
    assert (manifest["apiVersion"], manifest["kind"]) == ("ray.io/v1", "RayService")
    serve_config = ServeDeploySchema.model_validate(yaml.safe_load(manifest["spec"]["serveConfigV2"]))
    applications = {a.name: a for a in serve_config.applications}
    prefixes = {name: a.route_prefix for name, a in applications.items()}
    assert prefixes == {APP_NAME: "/", SOCKETS_APP_NAME: SOCKET_PREFIX}
    for application in applications.values():
        module, _, attr = application.import_path.partition(":")
        assert callable(getattr(importlib.import_module(module), attr))
        Settings(**application.args)  # the args are Podium settings
    head = manifest["spec"]["rayClusterConfig"]["headGroupSpec"]["template"]["spec"]["containers"][0]
    assert {e["name"] for e in head["env"]} >= {"PODIUM_DATABASE_URL", "PODIUM_REDIS_URL", "PODIUM_TOKEN_SECRET"}
    # Serve's process-wide switches that shape the gateway (podium/cluster/launch.py serve_env) hold on KubeRay too
    env = {e["name"]: e.get("value") for e in head["env"]}
    for key in ("RAY_SERVE_ENABLE_HA_PROXY", "RAY_SERVE_RUN_USER_CODE_IN_SEPARATE_THREAD",
                "RAY_SERVE_HTTP_PROXY_CALLBACK_IMPORT_PATH"):
        assert env[key] == serve_env(Settings(token_secret="unit-test-secret"))[key], key
