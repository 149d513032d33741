"""docs/usage.md is complete: every ledger column, every metric, every shipped price is in it."""

from __future__ import annotations

from pathlib import Path

import pytest

from shared.usage.ledger import SUM_FIELDS
from shared.usage.prices import PRICE_FIELDS, PRICES_AS_OF, SHIPPED_PRICES
from shared.usage.record import LEDGER_FIELDS, RESPONSE_FIELDS
from shared.usage.sink import METRICS

ROOT = Path(__file__).resolve().parents[2]
DOC = (ROOT / "docs" / "usage.md").read_text()
README = (ROOT / "README.md").read_text()


def section(title: str) -> str:
    start = DOC.index(f"\n{title}\n")
    end = DOC.find("\n## ", start + 1)
    return DOC[start : end if end >= 0 else None]


@pytest.mark.parametrize("name", LEDGER_FIELDS)
def test_every_session_column_is_documented(name: str) -> None:
    assert f"| `{name}` |" in section("## The ledger").split("`usage_responses`, by")[0]


@pytest.mark.parametrize("name", RESPONSE_FIELDS)
def test_every_response_column_is_documented(name: str) -> None:
    assert f"| `{name}` |" in section("## The ledger").split("`usage_responses`, by")[1]


@pytest.mark.parametrize(("name", "kind", "labels", "_help"), METRICS)
def test_every_metric_is_documented_with_its_type_and_labels(
    name: str, kind: str, labels: tuple[str, ...], _help: str
) -> None:
    [row] = [line for line in section("## Metrics").splitlines() if line.startswith(f"| `{name}` |")]
    cells = [cell.strip() for cell in row.split("|")[1:-1]]
    assert cells[1] == kind
    assert cells[2] == ", ".join(f"`{label}`" for label in labels)
    assert f"`{name}`" in README


@pytest.mark.parametrize("model", list(SHIPPED_PRICES))
def test_every_shipped_price_is_in_the_docs_table(model: str) -> None:
    price = SHIPPED_PRICES[model]
    cells = ["" if getattr(price, name) is None else f"{getattr(price, name):g}" for name in PRICE_FIELDS]
    assert f"| `{model}` | {' | '.join(cells)} |".replace("|  |", "|  |") in section("## Prices")


def test_the_prices_say_when_they_were_read_and_the_report_names_its_sums() -> None:
    assert f"read on {PRICES_AS_OF}" in section("## Prices")
    report = section("## `realtime-gateway usage`")
    for name in SUM_FIELDS:
        assert f"`{name}`" in report
