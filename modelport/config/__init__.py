"""The YAML config file: its schema, checked in full before anything loads.

Every section has a schema; an unknown or misspelt key at any level is refused by its path
(``models[2].params.n_ctxx``) with a "did you mean" when a known key is close. Each model's
``params`` are checked against its kind (``modelport.workers.entry_params``)::

    config = load_config("serve.yaml")      # raises ConfigError
    registry = config.registry()

This package sits with the surfaces: it may import ``core`` and ``workers``, never the server,
``modelport.ray`` or an optional extra (the ``ray:`` blocks' schema needs only pydantic).
"""

from modelport.config.schema import (
    ChainConfig,
    Config,
    ConfigError,
    DefaultsConfig,
    KeyConfig,
    LimitsConfig,
    ModelConfig,
    ResponsesConfig,
    RouterConfig,
    ServerConfig,
    config_error,
    load_config,
    parse_config,
)

__all__ = [
    "ChainConfig",
    "Config",
    "ConfigError",
    "KeyConfig",
    "DefaultsConfig",
    "LimitsConfig",
    "ModelConfig",
    "ResponsesConfig",
    "RouterConfig",
    "ServerConfig",
    "config_error",
    "load_config",
    "parse_config",
]
