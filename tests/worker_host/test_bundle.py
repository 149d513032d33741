"""`wrangler deploy --dry-run` bundles the Worker offline with the runtime's code and packages."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def test_wrangler_dry_run_bundles_worker_shared_and_packages(tmp_path: Path) -> None:
    if not (ROOT / "node_modules" / "wrangler").exists() or not (ROOT / "python_modules").exists():
        if os.environ.get("CI"):
            pytest.fail("wrangler or python_modules missing in CI: `make test` installs them")
        pytest.skip("wrangler or python_modules missing: run `make test` once")
    out = tmp_path / "bundle"
    env = {**os.environ, "WRANGLER_SEND_METRICS": "false", "CI": "true"}
    result = subprocess.run(
        [shutil.which("npx") or "npx", "wrangler", "deploy", "--dry-run", "--outdir", str(out)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    bundled = {path.relative_to(out).as_posix() for path in out.rglob("*") if path.is_file()}
    for module in ("entry.py", "worker/session.py", "shared/relay.py", "shared/simulator/__init__.py"):
        assert module in bundled
    for package in ("pydantic/__init__.py", "pydantic_core/__init__.py", "workers/__init__.py"):
        assert f"python_modules/{package}" in bundled
    assert any(name.startswith("python_modules/pydantic_core/_pydantic_core") for name in bundled)
    # Only the Worker's own code: no standalone server, tests or Node packages.
    assert not [name for name in bundled if name.split("/")[0] in {"standalone", "tests", "node_modules"}]
    # The playground's files go up as static assets, bound as ASSETS (wrangler.toml [assets]).
    output = result.stdout + result.stderr
    assert f"from the assets directory {ROOT / 'build' / 'assets'}" in output, output
    assert "env.ASSETS" in output
    page_files = [name for name in bundled if name.startswith("shared/playground/")]
    assert page_files == ["shared/playground/__init__.py"]  # the files are assets, not modules
