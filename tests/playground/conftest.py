"""Fixtures of the playground's browser test: Chromium, as the client matrix gets it."""

from __future__ import annotations

import pytest
from clients.harness import chromium_missing, require


@pytest.fixture(scope="session")
def chromium() -> None:
    require(chromium_missing())
