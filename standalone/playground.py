"""The playground page on the standalone server: its files, read once from the package, as answers."""

from __future__ import annotations

from collections.abc import Mapping
from importlib.resources import files

from aiohttp import web

from shared import playground
from shared.playground import Asset


def load_files() -> dict[str, bytes]:
    """Every file of the page, by name, from the installed ``shared.playground`` package."""
    package = files(playground.__name__)
    return {name: package.joinpath(name).read_bytes() for name in playground.FILES}


def respond(
    asset: Asset, contents: Mapping[str, bytes], method: str, headers: Mapping[str, str]
) -> web.Response:
    """The answer to a request for ``asset`` (lower-case header names), as Cloudflare's asset
    server gives it."""
    answer = playground.static_answer(asset, contents[asset.name], method, headers)
    return web.Response(status=answer.status, body=answer.body or None, headers=answer.headers)
