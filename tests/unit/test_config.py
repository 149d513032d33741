"""The settings model: read from a plain mapping, documented in docs/configuration.md, secrets hidden."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from shared.config import Settings

CONFIGURATION = (Path(__file__).resolve().parents[2] / "docs" / "configuration.md").read_text()


def test_defaults_need_no_environment() -> None:
    settings = Settings.from_mapping({})
    assert settings.default_provider == "openai"
    assert settings.default_model == "gpt-4o-realtime-preview"
    assert settings.openai_api_key is None


def test_values_come_from_their_names_and_unknown_names_are_ignored() -> None:
    settings = Settings.from_mapping(
        {"DEFAULT_PROVIDER": "simulator", "MAX_CLIENT_MESSAGE_BYTES": "1024", "PATH": "/usr/bin"}
    )
    assert settings.default_provider == "simulator"
    assert settings.max_client_message_bytes == 1024


def test_an_empty_key_means_unset() -> None:
    assert Settings.from_mapping({"OPENAI_API_KEY": ""}).openai_api_key is None


def test_bad_values_are_refused() -> None:
    with pytest.raises(ValidationError):
        Settings.from_mapping({"DEFAULT_PROVIDER": "elsewhere"})
    with pytest.raises(ValidationError):
        Settings.from_mapping({"MAX_CLIENT_MESSAGE_BYTES": "0"})


def test_keys_do_not_show_in_repr() -> None:
    settings = Settings.from_mapping(
        {"OPENAI_API_KEY": "sk-very-secret", "AZURE_OPENAI_API_KEY": "az-secret"}
    )
    assert "sk-very-secret" not in repr(settings)
    assert "az-secret" not in repr(settings)


@pytest.mark.parametrize("name", [name for name, _, _ in Settings.documentation()])
def test_every_setting_is_documented_in_docs_configuration(name: str) -> None:
    assert f"| `{name}` |" in CONFIGURATION
