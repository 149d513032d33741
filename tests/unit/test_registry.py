"""The provider registry: built-in providers, PROVIDERS_FILE's, and how each is reached and named."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from pydantic import ValidationError

from shared.config import Settings
from shared.handshake import SessionPlan, plan_session
from shared.providers import Credential, registry_request
from shared.registry import BUILTIN_NAMES, parse_providers, provider_table

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text()
EXAMPLE = ROOT / "docs" / "providers.example.toml"
NOW = 1_767_225_600.0

MYCO = """
[providers.myco]
kind = "openai"
url = "wss://realtime.example.com/v1/realtime"
auth = "api-key"
key_env = "MYCO_KEY"
protocol = "beta"
aliases = { "my-model" = "myco-realtime-1" }
"""


def plan(settings: Settings, query: str, headers: dict[str, str] | None = None) -> SessionPlan:
    planned = plan_session("/v1/realtime", query, headers or {}, settings, NOW)
    assert isinstance(planned, SessionPlan)
    return planned


def test_the_readme_provider_table_is_the_registry() -> None:
    pattern = r"<!-- providers: generated from the registry -->\n(.*?)\n<!-- /providers -->"
    block = re.search(pattern, README, re.S)
    assert block is not None
    assert block.group(1).splitlines() == provider_table(Settings().registry)


def test_builtin_providers_are_all_there() -> None:
    assert tuple(Settings().registry) == BUILTIN_NAMES


def test_the_example_file_loads() -> None:
    settings = Settings.from_mapping({"PROVIDERS_FILE": str(EXAMPLE), "DASHSCOPE_API_KEY": "sk-dash"})
    qwen = settings.registry["qwen"]
    assert (qwen.kind, qwen.protocol, qwen.key) == ("openai", "beta", "sk-dash")
    assert settings.registry["lab"].key is None  # its key_env is not set


def test_an_operator_provider_is_reached_at_its_url_with_its_key_and_aliases() -> None:
    settings = Settings.from_mapping({"PROVIDERS_TOML": MYCO, "MYCO_KEY": "myco-secret"})
    planned = plan(settings, "provider=myco&model=my-model")
    assert planned.error is None
    assert planned.upstream is not None
    assert planned.model == "myco-realtime-1"
    assert planned.upstream.url == "wss://realtime.example.com/v1/realtime?model=myco-realtime-1"
    assert planned.upstream.headers == {"api-key": "myco-secret", "OpenAI-Beta": "realtime=v1"}
    assert (planned.client_protocol, planned.upstream_protocol) == ("ga", "beta")
    assert "myco-secret" not in repr(settings.registry["myco"]) + repr(planned)


def test_a_query_key_goes_in_the_url_and_never_in_a_repr() -> None:
    settings = Settings.from_mapping({"PROVIDERS_FILE": str(EXAMPLE), "LAB_REALTIME_KEY": "lab-secret"})
    planned = plan(settings, "provider=lab&model=m")
    assert planned.upstream is not None
    assert planned.upstream.url == "wss://realtime.lab.example/v1/realtime?model=m&api_key=lab-secret"
    assert planned.upstream.headers == {}
    assert "lab-secret" not in repr(planned)


def test_xai_and_gemini_are_reached_as_documented() -> None:
    settings = Settings.from_mapping({"XAI_API_KEY": "xai-key", "GEMINI_API_KEY": "gemini-key"})
    xai = plan(settings, "provider=xai&model=gpt-realtime")
    assert xai.upstream is not None
    assert xai.upstream.url == "wss://api.x.ai/v1/realtime?model=grok-voice-latest"
    assert xai.upstream.headers == {"Authorization": "Bearer xai-key"}
    gemini = registry_request(
        settings.registry["gemini"], "gemini-3.8-live", Credential("gemini-key", bearer=True), "ga", {}
    )
    assert gemini.url.startswith("wss://generativelanguage.googleapis.com/ws/")
    assert "BidiGenerateContent" in gemini.url
    assert "model" not in gemini.url
    assert gemini.headers == {"x-goog-api-key": "gemini-key"}


def test_a_registry_provider_serves_only_the_realtime_endpoint() -> None:
    settings = Settings.from_mapping({"XAI_API_KEY": "xai-key"})
    planned = plan_session("/v1/realtime/translations", "provider=xai&model=m", {}, settings, NOW)
    assert isinstance(planned, SessionPlan)
    assert planned.error is not None
    assert planned.error.code == "endpoint_not_supported"
    assert "xAI does not document" in planned.error.message


def test_an_unknown_provider_names_the_registry() -> None:
    settings = Settings.from_mapping({"PROVIDERS_TOML": MYCO})
    planned = plan(settings, "provider=nope&model=m")
    assert planned.error is not None
    assert planned.error.code == "unknown_provider"
    assert "myco" in planned.error.message
    assert "xai" in planned.error.message


def test_default_provider_may_be_an_operator_provider() -> None:
    settings = Settings.from_mapping({"PROVIDERS_TOML": MYCO, "DEFAULT_PROVIDER": "myco"})
    assert plan(settings, "model=m").provider == "myco"


@pytest.mark.parametrize(
    ("text", "complaint"),
    [
        ('[providers.openai]\nkind = "openai"\nurl = "wss://x"', "built in"),
        ('[providers.x]\nkind = "openai"', "needs a url"),
        ('[providers.x]\nkind = "openai"\nurl = "wss://x"\nauth = "cookie"', "auth"),
        ('[providers.x]\nkind = "elsewhere"\nurl = "wss://x"', "kind"),
        ('[providers.x]\nkind = "openai"\nurl = "wss://x"\ncolour = "red"', "colour"),
        ('[providers."Bad Name"]\nkind = "simulator"', "provider name"),
        ("[other]\n", "only [providers"),
        ("[providers.x\n", "not valid TOML"),
    ],
)
def test_bad_provider_files_are_refused(text: str, complaint: str) -> None:
    with pytest.raises(ValidationError, match=re.escape(complaint)):
        Settings.from_mapping({"PROVIDERS_TOML": text})


def test_an_unreadable_providers_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="PROVIDERS_FILE"):
        Settings.from_mapping({"PROVIDERS_FILE": str(tmp_path / "missing.toml")})


def test_a_simulator_of_the_operator_needs_no_key() -> None:
    specs = parse_providers('[providers.demo]\nkind = "simulator"', {})
    settings = Settings.from_mapping({"PROVIDERS_TOML": '[providers.demo]\nkind = "simulator"'})
    assert specs["demo"].url is None
    planned = plan(settings, "provider=demo&model=m")
    assert planned.error is None
    assert planned.upstream is None
