"""The playground's files and how both runtimes serve them (:mod:`shared.playground`), without a socket."""

from __future__ import annotations

import re
import tomllib
from html.parser import HTMLParser
from pathlib import Path

import pytest

from shared import playground
from shared.playground import ASSETS, HEADERS, PAGE, asset_for, etag_of, headers_file, static_answer
from worker.build_bundle import build_assets

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "shared" / "playground"
BROWSER_ACCEPT = "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,*/*;q=0.8"
# The issue's list: what tests and users' scripts drive the page by.
TESTIDS = {
    "provider",
    "model",
    "connect",
    "disconnect",
    "status",
    "mic",
    "text-input",
    "send",
    "transcript",
    "events",
    "latency",
    "usage",
    "key",
}


# -- which request gets what --------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["GET", "HEAD"])
def test_a_browser_asking_for_slash_gets_the_page(method: str) -> None:
    assert asset_for(method, "/", {"accept": BROWSER_ACCEPT}) is PAGE
    assert asset_for(method, "/", {"accept": "text/html;q=0.9"}) is PAGE


@pytest.mark.parametrize(
    ("method", "headers"),
    [
        ("GET", {}),  # an API client with no Accept
        ("GET", {"accept": "*/*"}),  # curl
        ("GET", {"accept": "application/json"}),
        ("GET", {"accept": BROWSER_ACCEPT, "upgrade": "websocket"}),  # a session, whatever it accepts
        ("GET", {"accept": "text/html", "upgrade": "WebSocket"}),
        ("POST", {"accept": BROWSER_ACCEPT}),
    ],
)
def test_everything_else_at_slash_keeps_its_old_answer(method: str, headers: dict[str, str]) -> None:
    assert asset_for(method, "/", headers) is None


def test_files_are_served_under_playground_whatever_the_request_accepts() -> None:
    for path, asset in ASSETS.items():
        assert path == f"/playground/{asset.name}"
        assert asset_for("GET", path, {}) is asset
        assert asset_for("POST", path, {}) is asset  # the answer is 405, as Cloudflare's
    assert asset_for("GET", "/playground/nope.js", {}) is None
    assert asset_for("GET", "/playground/", {"accept": BROWSER_ACCEPT}) is None
    assert asset_for("GET", "/v1/realtime", {"accept": BROWSER_ACCEPT}) is None


# -- the answers ----------------------------------------------------------------------------------------


def test_a_file_is_answered_with_its_type_etag_and_the_page_headers() -> None:
    content = (PACKAGE / "app.js").read_bytes()
    answer = static_answer(ASSETS["/playground/app.js"], content, "GET", {})
    assert answer.status == 200
    assert answer.body == content
    assert answer.headers["Content-Type"] == "text/javascript; charset=utf-8"
    assert answer.headers["ETag"] == etag_of(content)
    assert answer.headers["Cache-Control"] == "public, max-age=0, must-revalidate"
    for name, value in HEADERS.items():
        assert answer.headers[name] == value


def test_head_has_the_headers_and_no_body() -> None:
    content = b"<!doctype html>"
    get = static_answer(PAGE, content, "GET", {})
    head = static_answer(PAGE, content, "HEAD", {})
    assert (head.status, head.headers, head.body) == (200, get.headers, b"")


@pytest.mark.parametrize("form", ["{}", "W/{}", " {} "])
def test_a_matching_etag_is_answered_304(form: str) -> None:
    content = b"body { }"
    answer = static_answer(
        ASSETS["/playground/style.css"], content, "GET", {"if-none-match": form.format(etag_of(content))}
    )
    assert (answer.status, answer.body) == (304, b"")
    assert answer.headers["ETag"] == etag_of(content)


def test_a_stale_etag_gets_the_file() -> None:
    answer = static_answer(PAGE, b"new", "GET", {"if-none-match": etag_of(b"old")})
    assert (answer.status, answer.body) == (200, b"new")


def test_a_request_with_credentials_is_not_marked_cacheable() -> None:
    for header in ("authorization", "range"):
        assert "Cache-Control" not in static_answer(PAGE, b"x", "GET", {header: "x"}).headers


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "OPTIONS"])
def test_other_methods_are_not_allowed(method: str) -> None:
    answer = static_answer(PAGE, b"x", method, {})
    assert (answer.status, answer.body) == (405, b"")
    assert answer.headers["Content-Security-Policy"] == HEADERS["Content-Security-Policy"]


def test_the_policy_allows_no_inline_code_and_nothing_from_elsewhere() -> None:
    policy = dict(part.split(" ", 1) for part in HEADERS["Content-Security-Policy"].split("; "))
    assert policy["default-src"] == "'none'"
    for directive in ("script-src", "style-src", "connect-src", "img-src"):
        assert policy[directive] == "'self'"
    assert policy["frame-ancestors"] == "'none'"
    assert "unsafe" not in HEADERS["Content-Security-Policy"]


# -- the files ----------------------------------------------------------------------------------------


def test_the_table_lists_every_file_of_the_package_and_nothing_else() -> None:
    shipped = {path.name for path in PACKAGE.iterdir() if path.is_file() and path.suffix != ".py"}
    assert shipped == set(playground.FILES)
    assert {asset.content_type for asset in ASSETS.values()} <= set(playground.CONTENT_TYPES.values())


def test_the_package_data_ships_the_files() -> None:
    setuptools = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    patterns = setuptools["package-data"]["shared.playground"]
    for name in playground.FILES:
        assert any(Path(name).match(pattern) for pattern in patterns), name


def test_every_module_the_page_loads_is_in_the_table() -> None:
    """The page's imports, its worklet and its stylesheet and icon: a file the table forgot would
    be a 404 on both runtimes."""
    names = {PAGE.name}
    for asset in ASSETS.values():
        text = (PACKAGE / asset.name).read_text()
        names |= set(re.findall(r"""(?:from\s+|import\s*\(\s*|new URL\(\s*)['"]\./([\w.-]+)['"]""", text))
        names |= set(re.findall(r"""(?:src|href)="/playground/([\w.-]+)\"""", text))
    assert names == set(playground.FILES)


class _Page(HTMLParser):
    """What the page's HTML holds that a policy or a test cares about."""

    def __init__(self) -> None:
        super().__init__()
        self.scripts: list[dict[str, str | None]] = []
        self.inline_code: list[str] = []
        self.testids: list[str] = []
        self.ids: set[str] = set()
        self.label_for: set[str] = set()
        self.controls: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        if tag == "script":
            self.scripts.append(attributes)
            self._in_script = True
        if tag == "style" or "style" in attributes:
            self.inline_code.append(f"<{tag}> style")
        self.inline_code += [f"<{tag} {name}>" for name in attributes if name.startswith("on")]
        if attributes.get("data-testid"):
            self.testids.append(attributes["data-testid"] or "")
        if attributes.get("id"):
            self.ids.add(attributes["id"] or "")
        if tag == "label" and attributes.get("for"):
            self.label_for.add(attributes["for"] or "")
        if tag in ("input", "select") and attributes.get("type") not in ("checkbox", "radio"):
            self.controls.append(attributes.get("id") or "")

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._in_script = False

    def handle_data(self, data: str) -> None:
        if self._in_script and data.strip():
            self.inline_code.append(f"inline script: {data.strip()[:40]}")


@pytest.fixture(scope="module")
def page() -> _Page:
    parsed = _Page()
    parsed.feed((PACKAGE / PAGE.name).read_text())
    return parsed


def test_the_page_has_no_inline_code(page: _Page) -> None:
    assert page.inline_code == []
    assert page.scripts == [{"type": "module", "src": "/playground/app.js"}]


def test_the_page_carries_every_test_id_once(page: _Page) -> None:
    assert set(page.testids) >= TESTIDS
    assert len(page.testids) == len(set(page.testids))


def test_every_field_has_a_label(page: _Page) -> None:
    assert page.label_for <= page.ids
    assert set(page.controls) <= page.label_for, set(page.controls) - page.label_for


# -- the Worker's assets ------------------------------------------------------------------------------


def test_the_worker_assets_are_the_files_at_their_paths_and_the_headers(tmp_path: Path) -> None:
    assets = build_assets(tmp_path / "assets")
    laid_out = {"/" + path.relative_to(assets).as_posix() for path in assets.rglob("*") if path.is_file()}
    assert laid_out == set(ASSETS) | {"/_headers"}
    for path, asset in ASSETS.items():
        assert (assets / path.lstrip("/")).read_bytes() == (PACKAGE / asset.name).read_bytes()
    assert (assets / "_headers").read_text() == headers_file()


def test_the_headers_file_gives_every_file_the_page_headers() -> None:
    path, *lines = headers_file().splitlines()
    assert path == "/playground/*"
    assert dict(line.strip().split(": ", 1) for line in lines) == HEADERS


def test_wrangler_serves_the_assets_and_runs_the_worker_first_at_slash() -> None:
    assets = tomllib.loads((ROOT / "wrangler.toml").read_text())["assets"]
    assert ROOT / assets["directory"] == ROOT / "build" / "assets"
    assert assets["run_worker_first"] == [playground.PAGE_PATH]
    assert (assets["html_handling"], assets["not_found_handling"]) == ("none", "none")
    entry = (ROOT / "worker" / "entry.py").read_text()
    assert f"self.env.{assets['binding']}.fetch(" in entry


def test_the_readme_opens_with_the_page_and_its_screenshot() -> None:
    readme = (ROOT / "README.md").read_text()
    first_section = readme.split("\n## ")[1]
    assert first_section.startswith("Two commands")
    assert "http://127.0.0.1:8080/" in first_section
    assert "docs/playground.png" in first_section
    assert (ROOT / "docs" / "playground.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
