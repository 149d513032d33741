"""Assemble what wrangler deploys: the Worker's bundle root and its static assets.

``build/worker/`` holds ``entry.py``, ``worker/``, ``shared/``. wrangler collects every ``*.py``
under the main module's directory and names modules relative to it. Our entry lives in ``worker/``
but imports ``shared`` from beside it, and pointing wrangler's ``base_dir`` at the repository would
bundle the tests, the standalone server and ``node_modules`` too. So wrangler's ``[build]`` step
runs this script, which lays out only what the Worker runs, mirroring the repository (``entry.py``
at the top, ``shared`` and ``worker`` as packages).

``build/assets/`` is ``wrangler.toml``'s ``[assets]`` directory: the playground's files under
``playground/`` (the paths they are served at, :mod:`shared.playground`) and a ``_headers`` file
that gives them the page's headers (its Content-Security-Policy), as the standalone server does.

A Worker reads no files, so a PRICES_FILE in the build's environment is checked and written into the
bundle as a module, ``shared/usage/bundled_prices.py``, which the Worker's accounting loads.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a script, by wrangler's [build] step
    sys.path.insert(0, str(ROOT))

from shared import playground  # noqa: E402

BUNDLE = ROOT / "build" / "worker"
ASSETS = ROOT / "build" / "assets"
PACKAGES = ("shared", "worker")
NOT_BUNDLED = {Path(__file__).name}
PRICES_MODULE = Path("shared") / "usage" / "bundled_prices.py"


def build(bundle: Path = BUNDLE, assets: Path = ASSETS, prices_file: str | None = None) -> Path:
    """Lay out the bundle root (returned) and the assets directory; with ``prices_file``
    (PRICES_FILE), its prices go in the bundle as a module."""
    if bundle.exists():
        shutil.rmtree(bundle)
    bundle.mkdir(parents=True)
    shutil.copy2(ROOT / "worker" / "entry.py", bundle / "entry.py")
    for package in PACKAGES:
        for source in sorted((ROOT / package).rglob("*.py")):
            if source.name in NOT_BUNDLED or "__pycache__" in source.parts:
                continue
            target = bundle / source.relative_to(ROOT)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
    if prices_file:
        bundle_prices(Path(prices_file), bundle / PRICES_MODULE)
    build_assets(assets)
    return bundle


def bundle_prices(source: Path, target: Path) -> None:
    """Write ``source``'s price table into the module ``target``, once it has been checked."""
    from shared.usage.prices import parse_prices

    text = source.read_text(encoding="utf-8")
    parse_prices(text)  # a bad file fails the build, not the Worker's first session
    target.write_text(
        f'"""PRICES_FILE ({source.name}) as it was when the bundle was built."""\n\nPRICES_TOML = {text!r}\n',
        encoding="utf-8",
    )


def build_assets(assets: Path = ASSETS) -> Path:
    """The playground's files at their served paths, and the ``_headers`` file."""
    if assets.exists():
        shutil.rmtree(assets)
    source = ROOT / "shared" / "playground"
    for asset in playground.ASSETS.values():
        target = assets / asset.path.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source / asset.name, target)
    (assets / "_headers").write_text(playground.headers_file())
    return assets


if __name__ == "__main__":
    bundle = build(prices_file=os.environ.get("PRICES_FILE") or None)
    print(f"worker bundle: {bundle.relative_to(ROOT)}, assets: {ASSETS.relative_to(ROOT)}")
