"""Model aliases: which model a name means, and the configs that cannot say."""

from __future__ import annotations

from typing import Any

import pytest

from modelport.config import ConfigError, parse_config
from modelport.core.errors import BadRequestError, ModelNotFoundError
from modelport.ray.plan import plan
from modelport.workers import ModelEntry, ModelRegistry
from modelport.workers.aliases import AliasMatch


def registry() -> ModelRegistry:
    return ModelRegistry(
        [
            ModelEntry("main", "fake", aliases=("claude-*", "claude-sonnet-4-5", "gpt-4o")),
            ModelEntry("fast", "fake", aliases=("claude-haiku-*", "claude-3-5-haiku-latest")),
            ModelEntry("claude-sonnet-4-5-real", "fake"),
            ModelEntry("gpt-4o", "fake"),  # a real name: it wins over main's exact alias
        ]
    )


@pytest.mark.parametrize(
    ("name", "model", "alias"),
    [
        ("main", "main", None),
        ("gpt-4o", "gpt-4o", None),  # a real name before an exact alias
        ("claude-sonnet-4-5-real", "claude-sonnet-4-5-real", None),  # ... and before a glob
        ("claude-sonnet-4-5", "main", "claude-sonnet-4-5"),  # exact
        ("claude-3-5-haiku-latest", "fast", "claude-3-5-haiku-latest"),  # exact before main's glob
        ("claude-haiku-4-5-20251001", "fast", "claude-haiku-*"),  # the longest glob
        ("claude-opus-4-1", "main", "claude-*"),
    ],
)
def test_a_name_resolves_by_precedence(name: str, model: str, alias: str | None) -> None:
    assert registry().resolve(name) == AliasMatch(model, alias)


def test_an_alias_loads_its_model_once_and_unknown_names_list_the_models() -> None:
    models = registry()
    assert models.chat("claude-opus-4-1") is models.chat("main") is models.chat("claude-sonnet-4-5")
    assert models.is_loaded("claude-x") and models.entry("claude-x").name == "main"
    assert models.names() == ["claude-sonnet-4-5-real", "fast", "gpt-4o", "main"]  # each model once
    with pytest.raises(ModelNotFoundError) as caught:
        models.resolve("mistral")
    assert caught.value.known == ["claude-sonnet-4-5-real", "fast", "gpt-4o", "main"]


def test_two_models_claiming_one_alias_is_refused_and_changes_nothing() -> None:
    models = registry()
    with pytest.raises(BadRequestError, match="'claude-haiku-\\*' is claimed by both 'fast' and 'other'") as caught:
        models.add(ModelEntry("other", "fake", aliases=("claude-haiku-*",)))
    assert caught.value.param == "aliases"
    assert "other" not in models.names() and models.resolve("claude-haiku-4").model == "fast"
    models.remove("fast")  # its aliases go with it
    assert models.resolve("claude-haiku-4") == AliasMatch("main", "claude-*")


def test_a_model_turned_into_a_replica_set_keeps_its_aliases() -> None:
    models = ModelRegistry([ModelEntry("main", "fake", aliases=("claude-*",))])
    models.replica_set("claude-opus")
    assert models.entry("main").kind == "replica-set"
    assert models.resolve("claude-opus") == AliasMatch("main", "claude-*")


def config(*models: dict[str, Any], chains: tuple[dict[str, Any], ...] = ()) -> dict[str, Any]:
    return {"models": list(models), "chains": list(chains)}


@pytest.mark.parametrize(
    ("data", "param", "words"),
    [
        (
            config({"name": "a", "kind": "fake", "aliases": ["x"]}, {"name": "b", "kind": "fake", "aliases": ["x"]}),
            "models[1].aliases[0]",
            "already 'a''s",
        ),
        (
            config(
                {"name": "a", "kind": "fake", "aliases": ["c-*"]}, {"name": "b", "kind": "fake", "aliases": ["c-*"]}
            ),
            "models[1].aliases[0]",
            "already 'a''s",
        ),
        (
            config(
                {"name": "a", "kind": "fake", "aliases": ["x"]},
                chains=({"name": "bot", "factory": "examples.rag:build_chain", "aliases": ["x"]},),
            ),
            "chains[0].aliases[0]",
            "already 'a''s",
        ),
        (
            config({"name": "a", "kind": "fake", "aliases": ["x"]}, {"name": "a", "kind": "fake", "aliases": ["y"]}),
            "models[1].aliases",
            "the same aliases",
        ),
        (config({"name": "a", "kind": "fake", "aliases": [""]}), "models[0].aliases[0]", "at least 1"),
    ],
)
def test_configs_whose_aliases_cannot_resolve_are_refused_by_path(data: dict[str, Any], param: str, words: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(data)
    assert caught.value.param == param and words in caught.value.message, caught.value.problems


def test_replicas_declare_aliases_once_or_identically_and_the_set_carries_them() -> None:
    data = config(
        {"name": "a", "kind": "fake", "id": "a-1", "aliases": ["claude-*", "gpt-4o"]},
        {"name": "a", "kind": "fake", "id": "a-2"},
        {"name": "a", "kind": "fake", "id": "a-3", "aliases": ["claude-*", "gpt-4o"]},
    )
    models = parse_config(data).registry(include_builtin=False)
    assert models.entry("a").kind == "replica-set" and models.entry("a").aliases == ("claude-*", "gpt-4o")
    assert models.resolve("claude-opus") == AliasMatch("a", "claude-*")


def test_aliases_carry_into_the_ray_plan() -> None:
    data = config(
        {"name": "one", "kind": "fake", "aliases": ["claude-*"]},
        {"name": "two", "kind": "fake", "id": "two-a", "aliases": ["gpt-*"]},
        {"name": "two", "kind": "fake", "id": "two-b"},
        chains=({"name": "bot", "factory": "examples.rag:build_chain", "aliases": ["rag"]},),
    )
    routes = {r.name: r for r in plan(parse_config(data)).routes}
    assert routes["one"].aliases == ("claude-*",) and routes["one"].kind == "ray-serve"
    assert routes["two"].aliases == ("gpt-*",) and routes["two"].kind == "replica-set"
    assert routes["bot"].aliases == ("rag",)
    assert ModelRegistry(routes.values()).resolve("gpt-5") == AliasMatch("two", "gpt-*")
