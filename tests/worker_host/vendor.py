"""Vendor the Python Worker's runtime dependencies into ``python_modules/``.

Usage::

    python tests/worker_host/vendor.py          # no-op when already up to date
    python tests/worker_host/vendor.py --force  # wipe and re-vendor

The Worker runs CPython 3.14 under Pyodide (wasm32-emscripten), so compiled
packages must be the ``pyemscripten_2026_0_wasm32`` wheels that PyPI carries;
pure-python wheels are platform independent. All wheels are pinned by version
*and* sha256 (pip's ``--require-hashes``), downloaded with pip, and unpacked
(a wheel is a zip) into ``python_modules/`` at the repository root. That is the
directory name workerd and ``pywrangler`` use for vendored packages, and the
one ``tests/worker_host/host.mjs`` puts on ``sys.path``.

``python_modules/`` is owned by this script: when the pins change it is deleted
and rebuilt. A stamp file records what was unpacked so reruns are free.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
TARGET = REPO_ROOT / "python_modules"
STAMP = TARGET / ".vendor-stamp.json"

# The platform of Pyodide 314.0.x (Python 3.14) - what Python Workers run from
# compatibility date 2026-09-08 on.
PLATFORM = "pyemscripten_2026_0_wasm32"
PYTHON_VERSION = "3.14"

# (distribution, version, sha256 of the wheel pip picks for PLATFORM/3.14). pydantic lies inside
# the range pyproject.toml declares for Pyodide (tests/unit/test_dependencies.py); tests/deps/check.py
# also runs the Worker on that range's newest and lowest releases.
# pydantic's own requirements: pydantic-core==2.50.5, annotated-types>=0.6.0,
# typing-extensions>=4.16.0, typing-inspection>=0.4.4. workers-runtime-sdk has none.
PINS: list[tuple[str, str, str]] = [
    ("pydantic", "2.14.4", "653a2ad9f6d8858529c77c72717d0ea991d6c6837fe683246b2f4b2bbfc3fadc"),
    ("pydantic-core", "2.50.5", "b2910ec0fa5aeb9bef70156f2b79f4783978fdcfaa7b2f1b5d1814458d2e79a1"),
    (
        "annotated-types",
        "0.8.0",
        "f072f4d804ea359e4eaf198b1af7a8b0943881a87f31bb764f8bf219bb9419e0",
    ),
    (
        "typing-extensions",
        "4.16.0",
        "481caa481374e813c1b176ada14e97f1f67a4539ce9cfeb3f350d78d6370c2e8",
    ),
    (
        "typing-inspection",
        "0.4.5",
        "bc210535442b39e1bf2805e0c7a17dfd6a4ace760c84c7f7d16245d23a6b1c39",
    ),
    (
        "workers-runtime-sdk",
        "1.9.5",
        "f2b912660a3ab60d2a24920106422f9eaf4cd7a794e42b022237ad2444287fef",
    ),
]


def wanted_stamp() -> dict:
    return {
        "platform": PLATFORM,
        "python_version": PYTHON_VERSION,
        "pins": {name: version for name, version, _ in PINS},
    }


def is_up_to_date() -> bool:
    try:
        return json.loads(STAMP.read_text()) == wanted_stamp()
    except (OSError, ValueError):
        return False


def download(dest: Path) -> list[Path]:
    requirements = dest / "requirements.txt"
    requirements.write_text(
        "".join(f"{name}=={version} --hash=sha256:{digest}\n" for name, version, digest in PINS)
    )
    cmd = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--disable-pip-version-check",
        "--no-deps",  # everything is pinned above; no resolver surprises
        "--require-hashes",
        "--only-binary=:all:",
        "--platform",
        PLATFORM,
        "--python-version",
        PYTHON_VERSION,
        "--dest",
        str(dest),
        "-r",
        str(requirements),
    ]
    subprocess.run(cmd, check=True)
    wheels = sorted(dest.glob("*.whl"))
    if len(wheels) != len(PINS):
        raise SystemExit(f"expected {len(PINS)} wheels, pip left {[w.name for w in wheels]}")
    return wheels


def unpack(wheels: list[Path], target: Path = TARGET) -> None:
    """Unpack ``wheels`` into ``target``, in place of whatever was there (python_modules/ also gets
    the stamp of the pins)."""
    # Build next to the target, then swap, so an interrupted run never leaves a
    # half-filled python_modules/ that carries a valid stamp.
    staging = target.with_name(target.name + ".tmp")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    for wheel in wheels:
        with zipfile.ZipFile(wheel) as zf:
            zf.extractall(staging)
    if target == TARGET:
        (staging / STAMP.name).write_text(json.dumps(wanted_stamp(), indent=2) + "\n")
    shutil.rmtree(target, ignore_errors=True)
    staging.rename(target)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--force", action="store_true", help="re-vendor even if up to date")
    args = parser.parse_args(argv)

    if not args.force and is_up_to_date():
        print(f"{TARGET.relative_to(REPO_ROOT)}/ is up to date")
        return 0
    with tempfile.TemporaryDirectory(prefix="worker-vendor-") as tmp:
        wheels = download(Path(tmp))
        unpack(wheels)
    print(f"vendored {len(PINS)} wheels into {TARGET.relative_to(REPO_ROOT)}/")
    return 0


if __name__ == "__main__":
    sys.exit(main())
