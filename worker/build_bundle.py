"""Assemble the Worker's bundle root: ``build/worker/`` holding ``entry.py``, ``worker/``, ``shared/``.

wrangler collects every ``*.py`` under the main module's directory and names modules relative to
it. Our entry lives in ``worker/`` but imports ``shared`` from beside it, and pointing wrangler's
``base_dir`` at the repository would bundle the tests, the standalone server and ``node_modules``
too. So wrangler's ``[build]`` step runs this script, which lays out only what the Worker runs,
mirroring the repository (``entry.py`` at the top, ``shared`` and ``worker`` as packages).
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BUNDLE = ROOT / "build" / "worker"
PACKAGES = ("shared", "worker")
NOT_BUNDLED = {Path(__file__).name}


def build(bundle: Path = BUNDLE) -> Path:
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
    return bundle


def durable_objects(config: Path = ROOT / "wrangler.toml") -> dict[str, str]:
    """The Durable Object bindings ``wrangler.toml`` declares: binding name -> class name."""
    import tomllib  # Python 3.11+, needed by the local host only (wrangler's build step may be older)

    with config.open("rb") as file:
        bindings = tomllib.load(file).get("durable_objects", {}).get("bindings", [])
    return {binding["name"]: binding["class_name"] for binding in bindings}


def host_arguments() -> list[str]:
    """The local Worker host's options binding the same Durable Objects (tests/worker_host)."""
    return [part for name, cls in durable_objects().items() for part in ("--durable-object", f"{name}={cls}")]


if __name__ == "__main__":
    if sys.argv[1:] == ["--host-arguments"]:
        print(" ".join(host_arguments()))
    else:
        print(f"worker bundle: {build().relative_to(ROOT)}")
