"""The ``modelport`` command line: list models, chat in the terminal, serve the API."""

from __future__ import annotations

import argparse
import os
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import fields
from typing import Any, TextIO

import modelport
from modelport.config import Config, ServerConfig, load_config
from modelport.core.errors import ConfigError, ModelPortError, UpstreamUnavailableError
from modelport.core.events import Finish, TextDelta, ToolCallDelta, Usage
from modelport.core.messages import AssistantMessage, Message, UserMessage
from modelport.core.request import ChatRequest
from modelport.workers.base import ChatWorker, Worker
from modelport.workers.model_registry import ModelRegistry, default_registry

__all__ = ["main"]


def _config(path: str | None) -> Config:
    return load_config(path) if path else Config()


def _registry(config: Config) -> ModelRegistry:
    # The process-wide registry, so that chains built by config factories (which look models
    # up there) share the workers the command loads instead of loading a second copy.
    registry = default_registry()
    for entry in config.entries():
        registry.add(entry, replace=True)
    return registry


def _load_with_progress(registry: ModelRegistry, name: str, out: TextIO) -> Worker:
    """Loads a model while a progress bar shows that something is happening."""
    from tqdm import tqdm

    registry.entry(name)  # fail fast on an unknown name, before drawing anything
    done = threading.Event()
    with tqdm(desc=f"loading {name}", unit="s", file=out, bar_format="{desc}: {elapsed}", leave=False) as bar:

        def tick() -> None:
            while not done.wait(0.2):
                bar.refresh()

        ticker = threading.Thread(target=tick, daemon=True)
        ticker.start()
        try:
            return registry.load(name)
        finally:
            done.set()
            ticker.join()


def _fetch_listing(url: str, path: str, key: str | None) -> list[dict[str, object]] | None:
    """``GET path`` on a running server's root, its ``data`` list; ``None`` after printing why not."""
    import httpx

    root = url.rstrip("/").removesuffix("/v1")
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    try:
        response = httpx.get(f"{root}{path}", headers=headers, timeout=30)
    except httpx.HTTPError as error:
        print(f"error: cannot reach {root}: {error}", file=sys.stderr)
        return None
    if response.status_code != 200:
        print(f"error: {root} answered {response.status_code}: {response.text[:300]}", file=sys.stderr)
        return None
    data: list[dict[str, object]] = response.json()["data"]
    return data


def _cmd_remote_models(url: str, admin_key: str | None, api_key: str | None) -> int:
    data: Any = _fetch_listing(url, "/admin/models" if admin_key else "/v1/models", admin_key or api_key)
    if data is None:
        return 2
    if not admin_key:  # names only; replica states need the admin API
        for card in data:
            print(card["id"])
        return 0
    print(f"{'NAME':24} {'REPLICA':24} {'KIND':22} {'STATE':10} {'IN FLIGHT':9} LAST ERROR")
    for model in data:
        for replica in model["replicas"]:
            in_flight = "-" if replica["in_flight"] is None else replica["in_flight"]
            line = (
                f"{model['name']:24} {replica['id']:24} {replica['kind']:22} {replica['state']:10} "
                f"{in_flight!s:9} {replica['last_error'] or ''}"
            )
            print(line.rstrip())
    return 0


def _ago(seconds: float | None, now: float, *, future: bool = False) -> str:
    if seconds is None:
        return "-"
    delta = seconds - now if future else now - seconds
    delta = max(delta, 0.0)
    text = f"{delta:.0f}s" if delta < 120 else f"{delta / 60:.0f}m" if delta < 7200 else f"{delta / 3600:.0f}h"
    return f"in {text}" if future else f"{text} ago"


def _mib(size: int | None) -> str:
    return "-" if size is None else f"{size / 1024 / 1024:.0f} MiB"


def _cmd_ps(args: argparse.Namespace) -> int:
    key = args.admin_key or os.environ.get("MODELPORT_ADMIN_KEY")
    if not key:
        print("error: give --admin-key or set MODELPORT_ADMIN_KEY (ps reads the server's /admin API)", file=sys.stderr)
        return 2
    data: Any = _fetch_listing(args.url, "/admin/models", key)
    if data is None:
        return 2
    now = time.time()
    header = f"{'NAME':24} {'LOAD STATE':10} {'PINNED':6} {'ESTIMATED':>10} {'MEASURED':>10} {'LAST USED':10} UNLOADS"
    print(header)
    for model in data:
        footprint = model.get("footprint") or {}
        unloads = "never" if model.get("unload_at") is None else _ago(model["unload_at"], now, future=True)
        if model.get("load_state") != "loaded":
            unloads = "-"
        line = (
            f"{model['name']:24} {model.get('load_state', '?'):10} {'yes' if model.get('pinned') else 'no':6} "
            f"{_mib(footprint.get('estimated')):>10} {_mib(footprint.get('measured')):>10} "
            f"{_ago(model.get('last_used'), now):10} {unloads}"
        )
        print(line.rstrip())
    return 0


def _cmd_models(args: argparse.Namespace) -> int:
    if args.url:
        return _cmd_remote_models(args.url, args.admin_key, args.api_key)
    registry = _registry(_config(args.config))
    print(f"{'NAME':24} {'KIND':22} {'CAPABILITIES':44} DESCRIPTION")
    for entry in registry.entries():
        caps = registry.declared_capabilities(entry.name)
        flags = [f.name for f in fields(caps) if getattr(caps, f.name) is True]
        if entry.base_model:
            flags.insert(0, "base-model")
        line = f"{entry.name:24} {entry.kind:22} {','.join(flags):44} {entry.description}"
        print(line.rstrip())
    return 0


def _stream_reply(
    worker: ChatWorker, history: list[Message], temperature: float | None, max_tokens: int | None
) -> tuple[str, Usage | None, float]:
    request = ChatRequest(list(history), temperature=temperature, max_tokens=max_tokens)
    parts: list[str] = []
    usage: Usage | None = None
    started = time.perf_counter()
    first: float | None = None
    for event in worker.stream(request):
        if isinstance(event, TextDelta):
            first = first or time.perf_counter()
            parts.append(event.text)
            sys.stdout.write(event.text)
            sys.stdout.flush()
        elif isinstance(event, ToolCallDelta):
            sys.stdout.write(f"[tool call {event.name}]" if event.name else event.arguments)
        elif isinstance(event, Finish) and event.usage is not None:
            usage = event.usage
    sys.stdout.write("\n")
    return "".join(parts), usage, time.perf_counter() - (first or started)


def _cmd_chat(args: argparse.Namespace) -> int:
    registry = _registry(_config(args.config))
    worker = _load_with_progress(registry, args.model, sys.stderr)
    if not isinstance(worker, ChatWorker):
        print(f"error: {args.model} is not a chat model", file=sys.stderr)
        return 2
    history: list[Message] = []
    if args.prompt is not None:
        history.append(UserMessage(args.prompt))
        _stream_reply(worker, history, args.temperature, args.max_tokens)
        return 0
    print(f"Chatting with {args.model}. /reset clears the history, /exit quits.", file=sys.stderr)
    while True:
        try:
            line = input("you> ")
        except (EOFError, KeyboardInterrupt):
            print(file=sys.stderr)
            return 0
        if not line.strip():
            continue
        if line.strip() == "/exit":
            return 0
        if line.strip() == "/reset":
            history.clear()
            print("(history cleared)", file=sys.stderr)
            continue
        history.append(UserMessage(line))
        sys.stdout.write(f"{args.model}> ")
        try:
            text, usage, seconds = _stream_reply(worker, history, args.temperature, args.max_tokens)
        except ModelPortError as error:
            history.pop()
            print(f"error: {error}", file=sys.stderr)
            continue
        history.append(AssistantMessage(text))
        if usage is not None and seconds > 0:
            rate = usage.completion_tokens / seconds
            print(f"({usage.completion_tokens} tokens, {rate:.1f} tokens/s)", file=sys.stderr)


def _cmd_check(args: argparse.Namespace) -> int:
    try:
        config = load_config(args.config)
    except ConfigError as error:
        problems = error.problems
        print(f"{args.config}: {len(problems)} problem{'s' if len(problems) > 1 else ''}", file=sys.stderr)
        for path, message in problems:
            print(f"  {path}: {message}", file=sys.stderr)
        return 2
    print(
        f"{args.config}: ok ({len(config.models)} models, {len(config.chains)} chains, "
        f"{len(config.server.keys) + len(config.server.api_keys)} keys)"
    )
    return 0


def _server_section(args: argparse.Namespace, section: ServerConfig) -> ServerConfig:
    """The config's ``server:`` section with the command line's flags over it."""
    keys = [*args.api_key, *section.api_keys]
    keys += [k.strip() for k in os.environ.get("MODELPORT_API_KEYS", "").split(",") if k.strip()]
    update: dict[str, object] = {"api_keys": keys, "admin_keys": [*section.admin_keys, *args.admin_key]}
    flags = {
        "max_concurrency": args.max_concurrency,
        "max_queue": args.max_queue,
        "drain_timeout_s": args.drain_timeout,
        "log_format": args.log_format,
        "metrics_public": args.metrics_public or None,
        "preload": args.preload or None,
        "playground": False if args.no_playground else None,
    }
    update.update({k: v for k, v in flags.items() if v is not None})
    return section.model_copy(update=update)


def _cmd_serve(args: argparse.Namespace) -> int:
    from modelport.server import ServerSettings, create_app
    from modelport.server.ops.logs import configure_logging
    from modelport.server.serve import serve

    config = _config(args.config)  # a bad config stops here, before any model loads
    # Like uvicorn's --app-dir: chains named "module:function" in the config import from here.
    sys.path.insert(0, os.getcwd())
    section = _server_section(args, config.server)
    configure_logging(args.log_level, section.log_format)
    if args.backend == "ray":
        return _serve_on_ray(args, config.model_copy(update={"server": section}))
    registry = _registry(config)
    preload = registry.names() if section.preload else ()
    settings = ServerSettings.from_config(section, preload=preload)
    app = create_app(registry, settings)
    n_keys = len(settings.api_keys) + len(settings.keys)
    auth = f"{n_keys} API key(s)" if n_keys else "no API key"
    root = f"http://{args.host}:{args.port}"
    lines = [f"modelport serving {len(registry.names())} models ({auth})", f"  API:        {root}/v1"]
    if settings.playground:
        lines.append(f"  playground: {root}/playground")
    lines.append(f"  docs:       {root}/docs")
    print("\n".join(lines), file=sys.stderr)
    try:
        serve(app, host=args.host, port=args.port, log_level=args.log_level)
    finally:
        registry.close()
    return 0


def _serve_on_ray(args: argparse.Namespace, config: Config) -> int:
    if not args.config:
        print("error: --backend ray deploys the models of a --config file", file=sys.stderr)
        return 2
    try:
        from modelport.ray.cluster import run
    except ImportError as error:  # pragma: no cover - depends on the installed extras
        print(f"error: --backend ray needs Ray Serve: pip install 'modelport[ray]' ({error})", file=sys.stderr)
        return 2
    print(f"modelport deploying {args.config} on Ray Serve, http://{args.host}:{args.port}/v1", file=sys.stderr)
    try:
        run(config, host=args.host, port=args.port, address=args.ray_address)
    except UpstreamUnavailableError as error:  # the cluster could not be joined
        print(f"error: {error.message}", file=sys.stderr)
        return 1
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="modelport", description=__doc__)
    parser.add_argument("--version", action="version", version=f"modelport {modelport.__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    check = sub.add_parser("check", help="validate a config file without loading any model")
    check.add_argument("--config", required=True, help="the YAML file to check")
    check.set_defaults(run=_cmd_check)

    models = sub.add_parser("models", help="list the registered models")
    models.add_argument("--config", help="YAML file with extra models")
    models.add_argument("--url", help="list a running server's models instead (with --admin-key: replica states)")
    models.add_argument("--admin-key", help="the server's admin key, for replica states")
    models.add_argument("--api-key", help="an API key, for a server that needs one (names only)")
    models.set_defaults(run=_cmd_models)

    ps = sub.add_parser("ps", help="show which models a running server holds in memory")
    ps.add_argument("--url", default="http://127.0.0.1:8000", help="the server (default http://127.0.0.1:8000)")
    ps.add_argument("--admin-key", help="the server's admin key (default: MODELPORT_ADMIN_KEY)")
    ps.set_defaults(run=_cmd_ps)

    chat = sub.add_parser("chat", help="chat with a model in the terminal")
    chat.add_argument("model", help="a registered model name")
    chat.add_argument("--config", help="YAML file with extra models")
    chat.add_argument("--prompt", help="send one message, print the reply and exit")
    chat.add_argument("--temperature", type=float, default=None)
    chat.add_argument("--max-tokens", type=int, default=None)
    chat.set_defaults(run=_cmd_chat)

    serve = sub.add_parser("serve", help="serve every model over an OpenAI-compatible HTTP API")
    serve.add_argument("--config", help="YAML file with extra models, chains and a server section")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument(
        "--api-key", action="append", default=[], help="accepted Bearer key (repeatable; also MODELPORT_API_KEYS)"
    )
    serve.add_argument("--max-concurrency", type=int, default=None, help="requests per model at once (default 4)")
    serve.add_argument("--max-queue", type=int, default=None, help="requests waiting per model before 429 (default 64)")
    serve.add_argument("--preload", action="store_true", help="load every model at startup (readiness waits)")
    serve.add_argument(
        "--drain-timeout",
        type=float,
        default=None,
        help="seconds in-flight requests may finish after SIGTERM (server.drain_timeout_s; default 30)",
    )
    serve.add_argument(
        "--admin-key", action="append", default=[], help="key of the /admin API (repeatable; server.admin_keys)"
    )
    serve.add_argument("--log-format", choices=("text", "json"), default=None, help="log lines as text or JSON")
    serve.add_argument("--no-playground", action="store_true", help="do not serve /playground")
    serve.add_argument("--metrics-public", action="store_true", help="serve /metrics without an API key")
    serve.add_argument("--log-level", default="info")
    serve.add_argument(
        "--backend",
        choices=("local", "ray"),
        default="local",
        help="local: this process; ray: one Ray Serve deployment per model of --config",
    )
    serve.add_argument(
        "--ray-address", default=None, help="join this Ray cluster (default: start a local one, no dashboard)"
    )
    serve.set_defaults(run=_cmd_serve)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Runs the command line; returns the exit status."""
    args = _parser().parse_args(argv)
    try:
        return int(args.run(args))
    except ModelPortError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
