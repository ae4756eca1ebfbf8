"""``/playground``: one static page (no build step, no CDN) to chat, call tools and compare embeddings.

The page is public; its API calls carry the key typed into it, so it follows the server's auth.
"""

from __future__ import annotations

from importlib.resources import files

from fastapi import FastAPI
from fastapi.responses import HTMLResponse, RedirectResponse

__all__ = ["install_playground"]


def install_playground(app: FastAPI) -> None:
    """Serves the playground at ``/playground`` and sends ``/`` there."""
    page = files("modelport.server").joinpath("static/playground.html").read_text(encoding="utf-8")

    @app.get("/playground", include_in_schema=False)
    async def playground() -> HTMLResponse:
        return HTMLResponse(page, headers={"Cache-Control": "no-cache"})

    @app.get("/", include_in_schema=False)
    async def root() -> RedirectResponse:
        return RedirectResponse("/playground")
