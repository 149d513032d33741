"""What is installed in a Python environment, asked of its own interpreter."""

from __future__ import annotations

import json
import subprocess

LISTING = (
    "import importlib.metadata, json, re\n"
    "print(json.dumps({re.sub(r'[-_.]+', '-', d.metadata['Name']).lower(): d.version"
    " for d in importlib.metadata.distributions()}))"
)


def releases(python: str) -> dict[str, str]:
    """Every distribution ``python`` can import, by normalised name, sorted."""
    listing = subprocess.run([python, "-c", LISTING], check=True, capture_output=True, text=True).stdout
    return dict(sorted(json.loads(listing).items()))
