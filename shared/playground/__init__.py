"""The playground: a page served by the gateway itself, to talk to any model from a browser.

The page is static files in this package (HTML, CSS and ES modules, no build step). This module
is what both runtimes know of them: which request gets which file (:func:`asset_for`), with which
content type, and the headers every file is served with (:data:`HEADERS`, a Content-Security-Policy
that allows no inline script). The standalone server reads the files from the package and answers
with :func:`static_answer`; the Worker serves them as Cloudflare static assets
(``worker/build_bundle.py`` lays them out with a ``_headers`` file made from :data:`HEADERS`, and
``wrangler.toml``'s ``[assets]`` serves ``/playground/*`` directly and lets the Worker answer ``/``
from its ``ASSETS`` binding).

``GET /`` from a browser (a request that accepts ``text/html`` and is no WebSocket upgrade) is the
page; every other request to ``/`` is what it was before (a session, or 426 for an API client).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field

PAGE_PATH = "/"
ASSETS_PREFIX = "/playground/"
PAGE_FILE = "index.html"

# Where the page may load from and connect to: itself only. No inline script or style, no frames.
# ``connect-src 'self'`` covers the WebSocket back to the gateway (ws:/wss: on the same host).
CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self'",
        "connect-src 'self'",
        "base-uri 'none'",
        "form-action 'none'",
        "frame-ancestors 'none'",
    )
)
HEADERS: dict[str, str] = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Permissions-Policy": "microphone=(self), camera=(), geolocation=()",
}
# What Cloudflare's asset server sends on a file (browsers revalidate every time, by ETag).
CACHE_CONTROL = "public, max-age=0, must-revalidate"
# Cloudflare's content types for these extensions (wrangler's lookup adds the charset to text/*).
CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
}
FILES = (
    PAGE_FILE,
    "style.css",
    "icon.svg",
    "app.js",
    "audio.js",
    "capture-worklet.js",
    "eventlog.js",
    "protocols.js",
    "session.js",
)


@dataclass(frozen=True, slots=True)
class Asset:
    """One file of the page: its name in this package and the path it is served at."""

    name: str

    @property
    def path(self) -> str:
        return ASSETS_PREFIX + self.name

    @property
    def content_type(self) -> str:
        return CONTENT_TYPES[self.name[self.name.rindex(".") :]]


ASSETS: dict[str, Asset] = {asset.path: asset for asset in map(Asset, FILES)}
PAGE = ASSETS[ASSETS_PREFIX + PAGE_FILE]


def wants_page(method: str, headers: Mapping[str, str]) -> bool:
    """Whether a request to ``/`` is a browser asking for a page (lower-case header names).

    A WebSocket upgrade is a session, and an API client (``curl``, an SDK) does not accept
    ``text/html``: both keep the answers they had before the playground.
    """
    if method not in ("GET", "HEAD") or headers.get("upgrade", "").lower() == "websocket":
        return False
    accepted = (part.split(";")[0].strip().lower() for part in headers.get("accept", "").split(","))
    return "text/html" in accepted


def asset_for(method: str, path: str, headers: Mapping[str, str]) -> Asset | None:
    """The file a request is for: the page at ``/`` (see :func:`wants_page`), or a file under
    ``/playground/``; None for everything else (the gateway's own routes)."""
    if path == PAGE_PATH:
        return PAGE if wants_page(method, headers) else None
    return ASSETS.get(path)


def etag_of(content: bytes) -> str:
    """A strong ETag for a file's bytes (quoted)."""
    return '"' + hashlib.sha256(content).hexdigest()[:32] + '"'


@dataclass(frozen=True, slots=True)
class StaticAnswer:
    """A file, or a bare status, as the HTTP answer to a request for an asset."""

    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""


def static_answer(asset: Asset, content: bytes, method: str, headers: Mapping[str, str]) -> StaticAnswer:
    """How Cloudflare's asset server answers a request for ``asset`` (lower-case header names):
    GET and HEAD only (405 otherwise), a 304 for a matching ``If-None-Match``, :data:`HEADERS` on
    every answer, no body for HEAD."""
    if method not in ("GET", "HEAD"):
        return StaticAnswer(405, dict(HEADERS))
    etag = etag_of(content)
    answer_headers = {"Content-Type": asset.content_type, "ETag": etag, **HEADERS}
    if "authorization" not in headers and "range" not in headers:
        answer_headers["Cache-Control"] = CACHE_CONTROL
    if headers.get("if-none-match", "").strip() in (etag, "W/" + etag):
        return StaticAnswer(304, answer_headers)
    return StaticAnswer(200, answer_headers, b"" if method == "HEAD" else content)


def headers_file() -> str:
    """The ``_headers`` file of the Worker's static assets: :data:`HEADERS` on every file."""
    lines = [f"{ASSETS_PREFIX}*"] + [f"  {name}: {value}" for name, value in HEADERS.items()]
    return "\n".join(lines) + "\n"
