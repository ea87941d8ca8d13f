"""The playground: a page at `/` to try options on sample images (development mode only).

`pixelpipe serve --dev` turns it on (PIXELPIPE_PLAYGROUND=true). The page is
plain HTML, CSS and JavaScript served from this package: no build step, no
assets from elsewhere, so it works offline. It never sees the signing key:
it sends the options it wants to `POST /playground/sign`, which builds the
path with the Python URL builder (signing.UrlBuilder), checks it with the
server's own parser (the same grammar and signature check as every image
URL), and answers the signed path, its /info path, and the builder call that
makes it. With the playground off these routes answer 404, as `/` does.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from proxy.errors import ProxyError
from signing import UrlBuilder

if TYPE_CHECKING:
    from proxy.service import ImageService
    from proxy.settings import Settings

HERE = Path(__file__).resolve().parent
SAMPLES = HERE.parent / "samples"
ASSETS = {"app.js": "text/javascript", "style.css": "text/css"}
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".avif", ".gif")
NO_STORE = {"Cache-Control": "no-store"}


class PlaygroundError(ValueError):
    """A request the sign endpoint refuses: 400 with this one line."""


def routes(settings: Settings) -> list[Route]:
    """The playground's routes when it is on; otherwise 404s that say so."""
    if not settings.playground:

        async def absent(request: Request) -> Response:
            return PlainTextResponse("not found\n", status_code=404)

        every = ["GET", "HEAD", "POST", "PUT", "DELETE", "PATCH"]
        return [
            Route("/", absent, methods=every),
            Route("/playground/{rest:path}", absent, methods=every),
        ]

    async def page(request: Request) -> Response:
        return FileResponse(HERE / "index.html", media_type="text/html", headers=NO_STORE)

    async def asset(request: Request) -> Response:
        name = request.path_params["name"]
        if name not in ASSETS:
            return PlainTextResponse("not found\n", status_code=404)
        return FileResponse(HERE / name, media_type=ASSETS[name], headers=NO_STORE)

    async def samples(request: Request) -> Response:
        return JSONResponse(sample_list(settings), headers=NO_STORE)

    async def sign(request: Request) -> Response:
        try:
            body = json.loads(await request.body() or b"{}")
            service: ImageService = request.app.state.service
            return JSONResponse(signed_paths(body, settings, service), headers=NO_STORE)
        except (PlaygroundError, ProxyError, json.JSONDecodeError) as error:
            reason = getattr(error, "reason", "") or str(error) or type(error).__name__
            return JSONResponse({"error": reason.splitlines()[0]}, status_code=400)

    return [
        Route("/", page, methods=["GET", "HEAD"]),
        Route("/playground/samples", samples, methods=["GET"]),
        Route("/playground/sign", sign, methods=["POST"]),
        Route("/playground/{name}", asset, methods=["GET", "HEAD"]),
    ]


def sample_list(settings: Settings) -> list[dict[str, Any]]:
    """The images at the top of LOCAL_FILESYSTEM_ROOT, as local:/// sources."""
    root = Path(settings.local_filesystem_root) if settings.local_filesystem_root else None
    if root is None or not root.is_dir():
        return []
    files = sorted(p for p in root.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    return [
        {"name": p.name, "source": f"local:///{p.name}", "bytes": p.stat().st_size}
        for p in files[:50]
    ]


def signed_paths(body: dict[str, Any], settings: Settings, service: ImageService) -> dict[str, str]:
    """The signed path for {source, options} and the builder call that makes it.

    Options are the builder's (`resize=["fit", 300, 200]`, `quality="auto"`,
    `format="webp"`); the path it builds is then read by the server's own
    parser, so only what an image URL may ask is ever signed.
    """
    source = body.get("source")
    options = body.get("options", {})
    if not isinstance(source, str) or not source or len(source) > 2048:
        raise PlaygroundError("source: expected a URL")
    if not isinstance(options, dict) or len(options) > 40:
        raise PlaygroundError("options: expected an object of builder options")
    values = {str(k): tuple(v) if isinstance(v, list) else v for k, v in options.items()}
    if settings.keys:
        key, salt = settings.keys[0], settings.salts[0]
        builder = UrlBuilder("", key=key, salt=salt, signature_size=settings.signature_size)
    else:
        builder = UrlBuilder("")
    try:
        path = builder.path(source, **values)
    except (TypeError, ValueError) as error:
        raise PlaygroundError(str(error)) from None
    service.parse(path)  # the server's grammar and signature check: raises ProxyError
    return {"path": path, "info_path": "/info" + path, "python": builder_call(source, values)}


def builder_call(source: str, values: dict[str, Any]) -> str:
    """Python that makes the same URL, with the key and salt read from the environment."""
    arguments = "".join(f", {name}={value!r}" for name, value in values.items())
    return (
        "# Signed with the server's key and salt. `make run` makes up a pair per run\n"
        "# (never shown) unless PIXELPIPE_KEY and PIXELPIPE_SALT are set; to run this,\n"
        "# start the server with your own pair and export the same pair here:\n"
        '#   export PIXELPIPE_KEY=$(python3 -c "import secrets; print(secrets.token_hex(32))")\n'
        '#   export PIXELPIPE_SALT=$(python3 -c "import secrets; print(secrets.token_hex(32))")\n'
        "#   make run\n"
        "import os\n"
        "from signing import UrlBuilder\n\n"
        'images = UrlBuilder("http://127.0.0.1:8080", '
        'key=os.environ["PIXELPIPE_KEY"], salt=os.environ["PIXELPIPE_SALT"])\n'
        f"images.url({source!r}{arguments})"
    )
