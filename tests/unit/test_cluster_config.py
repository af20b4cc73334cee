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

from gateway.app import serve_options
from persistence.settings import Settings

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


def test_the_rayservice_manifest_carries_a_valid_serve_config() -> None:
    from ray.serve.schema import ServeDeploySchema

    manifest = yaml.safe_load((ROOT / "deploy" / "rayservice.yaml").read_text())
    assert (manifest["apiVersion"], manifest["kind"]) == ("ray.io/v1", "RayService")
    serve_config = ServeDeploySchema.model_validate(yaml.safe_load(manifest["spec"]["serveConfigV2"]))
    [application] = serve_config.applications
    module, _, attr = application.import_path.partition(":")
    assert callable(getattr(importlib.import_module(module), attr))
    Settings(**application.args)  # the args are Podium settings
    head = manifest["spec"]["rayClusterConfig"]["headGroupSpec"]["template"]["spec"]["containers"][0]
    assert {e["name"] for e in head["env"]} >= {"PODIUM_DATABASE_URL", "PODIUM_REDIS_URL", "PODIUM_TOKEN_SECRET"}
