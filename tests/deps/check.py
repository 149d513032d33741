"""The gateway on the oldest and the newest releases that its declared dependency ranges admit.

Usage (``make test`` runs it after the suite)::

    python tests/deps/check.py                 # both ends, side by side
    python tests/deps/check.py lowest          # one end

For each end it builds, from scratch, under ``.venv-deps/<end>/``:

* ``venv/``: a virtual environment holding only ``pip install '.[standalone]'`` (the project as a
  wheel built from the working tree). At ``newest``, what pip picks today, as a new user gets it;
  at ``lowest``, every direct dependency at the lower bound ``pyproject.toml`` declares (pip picks
  their own dependencies, newest).
* ``python_modules/``: the Worker's packages as pip resolves the same declarations for Pyodide (the
  platform of ``tests/worker_host/vendor.py``), newest or lowest likewise; the stand-in for
  workerd's own SDK (``workers-runtime-sdk``) stays at the version vendor.py pins.

Then it runs the end-to-end tests marked ``deps`` (``pytest -m deps tests/e2e``, less the Worker's
provider faults: :data:`SELECTION`) from the project's own venv, which holds the SDKs and pytest,
with every gateway started from those installs
(``GATEWAY_VENV``, ``WORKER_PYTHON_MODULES``: tests/support/gateway_process.py). It prints what
each end installed and how its tests went, and exits 1 if any failed. Logs: ``.venv-deps/<end>/``.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import tomllib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from packaging.markers import default_environment
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests"))

from support.installed import releases  # noqa: E402
from worker_host import vendor  # noqa: E402

OUT = ROOT / ".venv-deps"
ENDS = ("newest", "lowest")
PROJECT = "realtime-gateway"
EXTRA = "standalone"
# The environment pip sees inside a Python Worker, for the markers of the declared requirements.
PYODIDE_ENVIRONMENT = {
    "sys_platform": "emscripten",
    "platform_system": "Emscripten",
    "platform_machine": "wasm32",
    "python_version": vendor.PYTHON_VERSION,
    "python_full_version": f"{vendor.PYTHON_VERSION}.0",
}
# The local Worker host's stand-in for what workerd provides itself: not a dependency of ours.
WORKER_HOST_PACKAGES = {"workers-runtime-sdk"}
# The Worker's only package is pydantic, and the provider faults reach it through the host's
# WebSockets, not through Python packages: its fault tests (timed, so the first to suffer from two
# runs side by side) stay in the suite.
SELECTION = "not (test_faults and worker)"


@dataclass(frozen=True)
class End:
    name: str

    @property
    def lowest(self) -> bool:
        return self.name == "lowest"

    @property
    def root(self) -> Path:
        return OUT / self.name

    @property
    def venv(self) -> Path:
        return self.root / "venv"

    @property
    def python_modules(self) -> Path:
        return self.root / "python_modules"


# -- what pyproject.toml declares --------------------------------------------------------------------


def declared(environment: dict[str, str], extra: str | None) -> list[Requirement]:
    """The project's own requirements (with ``extra``'s) whose markers hold in ``environment``."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    lines = list(project["dependencies"])
    if extra:
        lines += project["optional-dependencies"][extra]
    requirements = []
    for line in lines:
        requirement = Requirement(line)
        if requirement.name == PROJECT:
            continue
        env = {**default_environment(), **environment, "extra": extra or ""}
        if requirement.marker is None or requirement.marker.evaluate(env):
            requirement.marker = None
            requirements.append(requirement)
    return requirements


def lower_bounds(requirements: list[Requirement]) -> list[str]:
    """``name==version`` for each requirement's lower bound (each must declare one)."""
    pins = []
    for requirement in requirements:
        bounds = [spec.version for spec in requirement.specifier if spec.operator in (">=", "==", "~=")]
        if len(bounds) != 1:
            raise SystemExit(f"pyproject.toml: {requirement} needs one lower bound (>=) to be tested")
        pins.append(f"{requirement.name}=={bounds[0]}")
    return pins


# -- building ---------------------------------------------------------------------------------------


def run(command: list[str], log: Path, env: dict[str, str] | None = None) -> None:
    with log.open("a") as out:
        out.write(f"$ {' '.join(command)}\n")
        out.flush()
        done = subprocess.run(command, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=ROOT)
    if done.returncode != 0:
        raise RuntimeError(f"`{' '.join(command[:4])} ...` failed: see {log.relative_to(ROOT)}")


def project_wheel(dest: Path, log: Path) -> Path:
    """The project as a wheel, built from a copy of the working tree's files (tracked or not, never
    ignored ones: no stale ``build/`` can slip into it)."""
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        cwd=ROOT,
        check=True,
        capture_output=True,
    ).stdout.decode()
    source = dest / "source"
    for name in filter(None, listed.split("\0")):
        path = ROOT / name
        if path.is_file():  # a file deleted from the tree is still listed until the change is staged
            (source / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, source / name)
    run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(dest), str(source)], log)
    [wheel] = dest.glob("*.whl")
    return wheel


def build_venv(end: End, wheel: Path, log: Path) -> None:
    """The venv, by this venv's pip: it holds nothing but the gateway and what pip installs for it.
    (Not compiled to bytecode at install: the gateway's first start compiles what it imports.)"""
    run([sys.executable, "-m", "venv", "--without-pip", str(end.venv)], log)
    python = str(end.venv / "bin" / "python")
    command = [sys.executable, "-m", "pip", "--python", python, "install", "-q", "--no-compile"]
    command.append(f"{wheel}[{EXTRA}]")
    if end.lowest:
        constraints = end.root / "lowest-standalone.txt"
        constraints.write_text("\n".join(lower_bounds(declared({}, EXTRA))) + "\n")
        command += ["--constraint", str(constraints)]
    run(command, log)


def build_worker_modules(end: End, log: Path) -> None:
    requirements = declared(PYODIDE_ENVIRONMENT, None)
    wanted = [str(requirement) for requirement in requirements]
    wanted += [f"{name}=={version}" for name, version, _ in vendor.PINS if name in WORKER_HOST_PACKAGES]
    wheels = end.root / "worker-wheels"
    shutil.rmtree(wheels, ignore_errors=True)
    command = [
        *(sys.executable, "-m", "pip", "download", "-q", "--only-binary=:all:"),
        *("--platform", vendor.PLATFORM, "--python-version", vendor.PYTHON_VERSION),
        *("--dest", str(wheels), *wanted),
    ]
    if end.lowest:
        constraints = end.root / "lowest-worker.txt"
        constraints.write_text("\n".join(lower_bounds(requirements)) + "\n")
        command += ["--constraint", str(constraints)]
    run(command, log)
    vendor.unpack(sorted(wheels.glob("*.whl")), end.python_modules)


def installed(end: End) -> tuple[str, str]:
    """What the end's venv and python_modules hold, as ``name version`` lists."""
    venv = [f"{name} {version}" for name, version in releases(end.venv / "bin" / "python").items()]
    modules = sorted(
        " ".join(path.name.removesuffix(".dist-info").replace("_", "-").rsplit("-", 1))
        for path in end.python_modules.glob("*.dist-info")
    )
    return ", ".join(venv), ", ".join(modules)


# -- the tests --------------------------------------------------------------------------------------


def run_tests(end: End) -> int:
    env = {
        **os.environ,
        "GATEWAY_VENV": str(end.venv),
        "WORKER_PYTHON_MODULES": str(end.python_modules),
    }
    command = [
        *(sys.executable, "-m", "pytest", "-m", "deps", "-k", SELECTION, "-q", "-p", "no:cacheprovider"),
        *("--durations=5", "--basetemp", str(end.root / "pytest"), "tests/e2e"),
    ]
    log = end.root / "pytest.log"
    with log.open("w") as out:
        return subprocess.run(command, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=ROOT).returncode


@dataclass
class Outcome:
    """How one end went."""

    failed: bool
    report: str
    passed: int = 0
    failures: int = 0
    skipped: int = 0

    @classmethod
    def of_pytest(cls, code: int, summary: str, report: str) -> Outcome:
        """From pytest's exit code and closing line (``3 passed, 1 failed, 2 skipped in 2.0s``)."""
        found = dict.fromkeys(("passed", "failed", "skipped", "error", "errors"), 0)
        found |= {word: int(number) for number, word in re.findall(r"(\d+) (\w+)", summary) if word in found}
        failures = found["failed"] + found["error"] + found["errors"]
        return cls(code != 0, report, found["passed"], failures or int(code != 0), found["skipped"])


def check(end: End, wheel: Path) -> Outcome:
    """Build ``end`` and run its tests."""
    started = time.monotonic()
    shutil.rmtree(end.root, ignore_errors=True)
    end.root.mkdir(parents=True)
    log = end.root / "build.log"
    try:
        build_venv(end, wheel, log)
        build_worker_modules(end, log)
    except RuntimeError as error:
        return Outcome(True, f"{end.name}: could not build: {error}", failures=1)
    built = time.monotonic()
    code = run_tests(end)
    tested = time.monotonic()
    venv, modules = installed(end)
    lines = (end.root / "pytest.log").read_text().splitlines()
    summary = lines[-1].strip("= ") if lines else "no output"
    report = [
        f"{end.name}: {summary} (built in {built - started:.0f} s, tested in {tested - built:.0f} s)",
        f"  standalone venv: {venv}",
        f"  Worker packages: {modules}",
    ]
    if code != 0:
        report.append(f"  {end.root.relative_to(ROOT)}/pytest.log, last lines:")
        report += [f"    {line}" for line in lines[-40:]]
    return Outcome.of_pytest(code, summary, "\n".join(report))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("ends", nargs="*", metavar="END", help=f"{' or '.join(ENDS)} (default: both)")
    args = parser.parse_args(argv)
    unknown = set(args.ends) - set(ENDS)
    if unknown:
        parser.error(f"unknown end {', '.join(sorted(unknown))}: choose from {', '.join(ENDS)}")
    ends = [End(name) for name in dict.fromkeys(args.ends or ENDS)]
    started = time.monotonic()
    OUT.mkdir(exist_ok=True)
    wheel_log = OUT / "wheel.log"
    wheel_log.unlink(missing_ok=True)
    with tempfile.TemporaryDirectory(prefix="wheel-", dir=OUT) as tmp:
        try:
            wheel = project_wheel(Path(tmp), wheel_log)
        except RuntimeError as error:
            print(f"dependency check: could not build the project's wheel: {error}")
            return 1
        with ThreadPoolExecutor(len(ends)) as pool:
            outcomes = list(pool.map(lambda end: check(end, wheel), ends))
    for outcome in outcomes:
        print(outcome.report)
    failed = [end.name for end, outcome in zip(ends, outcomes, strict=True) if outcome.failed]
    verdict = f"{', '.join(failed)} failed" if failed else "passed"
    print(f"dependency check {verdict} in {time.monotonic() - started:.0f} s")
    passed, failures, skipped = (
        sum(getattr(o, name) for o in outcomes) for name in ("passed", "failures", "skipped")
    )
    print(f"deps: {passed} passed, {failures} failed, {skipped} skipped")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
