"""Interactive API docs that work offline: Swagger UI 5 (which reads OpenAPI 3.1) served from the package.

The assets come from ``fastapi-offline``'s static folder (Swagger UI 5.x); the older
``swagger-ui-bundle`` ships Swagger UI 4, which cannot render the OpenAPI 3.1 FastAPI emits.
"""

from __future__ import annotations

import importlib.util
import logging
from pathlib import Path

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

__all__ = ["install_docs"]

logger = logging.getLogger("modelport.server")

ASSETS = "/docs/assets"


def _assets() -> Path | None:
    spec = importlib.util.find_spec("fastapi_offline")
    if spec is None or not spec.submodule_search_locations:
        return None
    folder = Path(next(iter(spec.submodule_search_locations))) / "static"
    return folder if (folder / "swagger-ui-bundle.js").is_file() else None


def install_docs(app: FastAPI) -> None:
    """Serves ``/docs`` with Swagger UI from the installed assets instead of a CDN."""
    folder = _assets()
    if folder is None:  # pragma: no cover - the server extra installs it
        logger.warning("fastapi-offline is not installed; /docs is disabled")
        return
    app.mount(ASSETS, StaticFiles(directory=str(folder)), name="docs-assets")
    openapi_url = app.openapi_url or "/openapi.json"

    @app.get("/docs", include_in_schema=False)
    async def docs() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=openapi_url,
            title=f"{app.title} - API docs",
            swagger_js_url=f"{ASSETS}/swagger-ui-bundle.js",
            swagger_css_url=f"{ASSETS}/swagger-ui.css",
            swagger_favicon_url=f"{ASSETS}/favicon.png",
        )
