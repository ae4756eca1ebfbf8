"""Ray Serve: the same OpenAI server across processes and machines.

``modelport serve --backend ray --config FILE`` or ``build_app(FILE)`` deploys one Serve
deployment per model of the file and one ingress that runs the OpenAI app in front of them.
Ray is imported only when an application is built or run. Importing this package changes
nothing in the process; building an app or starting a cluster sets ``RAY_USAGE_STATS_ENABLED=0``
unless it is set, so that Ray reports nothing off the machine.

Layer: above the server and the config, beside the CLI; nothing below imports it.
"""

from __future__ import annotations

import typing

if typing.TYPE_CHECKING:
    from collections.abc import Mapping
    from pathlib import Path
    from typing import Any

    from ray.serve import Application

    from modelport.config import Config

__all__ = ["build_app"]


def build_app(config: Config | Mapping[str, Any] | str | Path) -> Application:
    """The Serve application for a config (an object, a mapping in the YAML's shape, or a path).

    See ``modelport.ray.app.build_app``.
    """
    from modelport.ray.app import build_app as build

    return build(config)
