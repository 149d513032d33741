"""``wrangler.toml``'s ``[assets]`` table, Durable Object bindings and D1 databases as ``host.mjs``
options, so the local host serves the Worker's static assets, binds its Durable Objects and its D1
databases (each a SQLite file under ``.wrangler/state/d1/``, as ``wrangler dev`` keeps them locally)
as the deployment would.

``python tests/worker_host/wrangler_options.py [--config FILE]`` prints them, one per line (``make worker``
uses it); :func:`host_options` gives them to the tests. Paths in ``wrangler.toml`` are relative to
the file; the options carry them absolute.
"""

from __future__ import annotations

import argparse
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
D1_STATE = Path(".wrangler") / "state" / "d1"  # beside wrangler.toml; .wrangler/ is ignored by git


def host_options(config: Path = ROOT / "wrangler.toml") -> list[str]:
    wrangler = tomllib.loads(config.read_text())
    options = []
    for binding in wrangler.get("durable_objects", {}).get("bindings", []):
        options += ["--durable-object", f"{binding['name']}={binding['class_name']}"]
    for database in wrangler.get("d1_databases", []):
        name = database.get("database_name", database["binding"])
        options += [
            "--d1",
            f"{database['binding']}={(config.parent / D1_STATE / f'{name}.sqlite3').resolve()}",
        ]
    return options + _assets_options(config, wrangler.get("assets"))


def _assets_options(config: Path, assets: dict | None) -> list[str]:
    if not assets:
        return []
    options = ["--assets", str((config.parent / assets["directory"]).resolve())]
    if "binding" in assets:
        options += ["--assets-binding", assets["binding"]]
    first = assets.get("run_worker_first", False)
    rules = ["/*"] if first is True else [] if first is False else list(first)
    for rule in rules:
        options += ["--assets-run-worker-first", rule]
    for name in ("html_handling", "not_found_handling"):
        if name in assets:
            options += [f"--assets-{name.replace('_', '-')}", assets[name]]
    return options


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", type=Path, default=ROOT / "wrangler.toml")
    print("\n".join(host_options(parser.parse_args().config)))
