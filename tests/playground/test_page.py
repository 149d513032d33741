"""The playground page in headless Chromium, on both runtimes, spoken to through a fake microphone.

``js/playground.mjs`` opens ``http://<gateway>/`` in Debian's Chromium with
``--use-fake-device-for-media-stream --use-file-for-fake-audio-capture=<speech>.wav`` and uses the page
through its ``data-testid`` elements, as a person would: two sessions on one page load.

1. ``provider=simulator``, no key: the microphone plays two utterances (:mod:`playground.speech`);
   the simulator's server VAD hears each, commits it and answers "I heard N seconds of audio." with
   real speech, which the page plays back; the second utterance starts while the first reply is still
   playing, so the page stops it (barge-in) and truncates the item. Then a typed message gets a typed
   reply. A screenshot is kept in ``tests/artifacts/``.
2. ``provider=openai`` with a key typed into the page: the strict fake provider
   (``tests/support/fake_upstream.py``) records what reached it: the page's key as a bearer, nothing it
   refused, and the microphone's audio in 100 ms appends of 4800 bytes, all of them.
3. ``provider=simulator`` in push-to-talk mode: each utterance is held, the first with the pointer on
   the talk button, the second with Space (which speaks over the first reply).

The gateway is tests/conftest.py's ``gateway`` with the simulator at its real pace
(``paced_gateway``): its replies stream a chunk at a time, as a provider's do.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest
from clients.harness import CHROMIUM, CLIENT_KEY, ClientRun, check_strict_provider, run_node, upstream_of
from playground.speech import Scenario, compose
from support.fake_upstream import REPLY_TEXT, FakeUpstream, UpstreamConnection
from support.gateway_process import GatewayProcess

HERE = Path(__file__).resolve().parent
ARTIFACTS = HERE.parent / "artifacts"
SCRIPT = HERE / "js" / "playground.mjs"
RUN_TIMEOUT_SECONDS = 150.0
CHUNK_BYTES = 4800  # 100 ms of PCM16 at 24 kHz
TYPED = "Hello from the playground"
# What the issue asks every page to carry, for tests and users' scripts.
TESTIDS = {
    "provider",
    "model",
    "connect",
    "disconnect",
    "status",
    "mic",
    "text-input",
    "send",
    "transcript",
    "events",
    "latency",
    "usage",
    "key",
}

pytestmark = pytest.mark.timeout(RUN_TIMEOUT_SECONDS + 90)


def fake_model(runtime: str) -> str:
    return f"playground-{runtime}"


@pytest.fixture(scope="module")
def scenario(tmp_path_factory: pytest.TempPathFactory) -> Scenario:
    return compose(tmp_path_factory.mktemp("speech") / "scenario.wav")


@pytest.fixture(scope="module")
def run(chromium: None, paced_gateway: GatewayProcess, scenario: Scenario) -> ClientRun:
    ARTIFACTS.mkdir(exist_ok=True)
    screenshot = ARTIFACTS / f"playground-{paced_gateway.runtime}.png"
    screenshot.unlink(missing_ok=True)
    speech = {"spokenTurns": 2, "speechSeconds": scenario.seconds, "text": TYPED}
    sessions = [
        {
            "provider": "simulator",
            "model": "gpt-realtime",
            "spokenReply": "I heard",
            "typedReply": f"You said: {TYPED}",
            "screenshot": True,
            **speech,
        },
        {
            "provider": "openai",
            "model": fake_model(paced_gateway.runtime),
            "key": CLIENT_KEY,
            "spokenReply": REPLY_TEXT,
            "typedReply": REPLY_TEXT,
            **speech,
        },
    ]
    # Push to talk: the first utterance held by the pointer, the second by Space, pressed about a
    # second after the first release, while the first reply plays.
    first, second = scenario.first, scenario.second
    holds = [
        {"by": "pointer", "from": first[0] - 0.2, "to": first[1] + 0.2},
        {"by": "space", "from": second[0] - 0.3, "to": second[1] + 0.2},
    ]
    sessions.append(
        {"provider": "simulator", "model": "gpt-realtime", "turns": "push_to_talk", "holds": holds}
        | {"spokenReply": "I heard"}
    )
    arguments = {
        "url": f"http://127.0.0.1:{paced_gateway.port}/",
        "executable": str(CHROMIUM),
        "wav": str(scenario.path),
        "sessions": json.dumps(sessions),
        "screenshot": str(screenshot),
    }
    return run_node(str(SCRIPT), arguments, timeout=RUN_TIMEOUT_SECONDS)


@pytest.fixture(scope="module")
def upstream(
    run: ClientRun, paced_gateway: GatewayProcess, fake_upstream: FakeUpstream
) -> UpstreamConnection:
    """What the fake provider saw of the second session."""
    (connection,) = upstream_of(fake_upstream, fake_model(paced_gateway.runtime), 1)
    return connection


def replies(snapshot: dict[str, Any]) -> list[dict[str, str]]:
    return [entry for entry in snapshot["transcript"] if entry["role"] == "assistant"]


def events(snapshot: dict[str, Any], direction: str, kind: str) -> list[dict[str, str]]:
    return [e for e in snapshot["events"] if e["direction"] == direction and e["type"] == kind]


# -- the page --------------------------------------------------------------------------------------


def test_page_is_served_with_its_policy_and_test_ids(run: ClientRun) -> None:
    page = run.step("page")
    assert page["status"] == 200
    assert page["headers"]["content-type"] == "text/html; charset=utf-8"
    assert "script-src 'self'" in page["headers"]["content-security-policy"]
    assert "HeadlessChrome" in page["user_agent"]
    assert set(page["testids"]) >= TESTIDS


def test_nothing_broke_and_nothing_was_blocked(run: ClientRun) -> None:
    checks = run.step("checks")
    assert checks["csp_violations"] == []
    # The page asks whether /v1/live/sessions is served; a gateway without it answers 404.
    problems = [p for p in checks["problems"] if not p.get("url", "").endswith("/v1/live/sessions")]
    assert problems == []


def test_no_session_got_an_error_event(run: ClientRun) -> None:
    """Nothing the page sent was refused, by the simulator or the strict fake (a truncation of a reply
    still streaming, a cancel of one already done, a commit of too little audio would be)."""
    for index in range(3):
        for snapshot in run.step(f"session-{index}").values():
            if isinstance(snapshot, dict) and "transcript" in snapshot:
                assert [e for e in snapshot["transcript"] if e["role"] == "gateway"] == []
                assert events(snapshot, "in", "error") == []


# -- with the simulator ----------------------------------------------------------------------------


def test_simulator_session_opens_without_a_key(run: ClientRun) -> None:
    opened = run.step("session-0")["opened"]
    assert opened["state"] == "open"
    assert opened["status"].startswith("Connected: simulator · gpt-realtime · sess_"), opened["status"]


def test_spoken_turns_get_spoken_replies(run: ClientRun, scenario: Scenario) -> None:
    spoken = run.step("session-0")["spoken"]
    said = [entry["text"] for entry in spoken["transcript"] if entry["role"] == "user"]
    answers = [entry["text"] for entry in replies(spoken)]
    assert len(said) == 2, spoken["transcript"]
    assert len(answers) == 2, spoken["transcript"]
    # The simulator measures the turn its VAD cut: the speech, its 300 ms of padding before and
    # 500 ms of silence after; the page shows its input transcript and its spoken reply's.
    first = scenario.first[1] - scenario.first[0]
    heard = float(said[0].removeprefix("(").split()[0])
    assert first <= heard <= first + 1.0, (first, said)
    assert answers[1] == f"I heard {float(said[1].removeprefix('(').split()[0]):.1f} seconds of audio."


def test_the_reply_audio_was_scheduled_for_playback_without_gaps(run: ClientRun) -> None:
    playback = run.step("session-0")["spoken"]["playback"]
    assert int(playback["chunks"]) >= 20  # 100 ms each: the reply cut short, and the whole second one
    assert int(playback["scheduledMs"]) == 100 * int(playback["chunks"])
    # Chunks join back to back while they come in time. The simulator streams at twice real time
    # after 250 ms, and the page plays 100 ms ahead, so only a stall of the tab or the gateway makes
    # a gap: none in runs on an idle machine, at most one on a 2-core machine at a load of 15.
    assert int(playback["gaps"]) <= 1


def test_speaking_over_the_reply_stops_it_and_truncates_it(run: ClientRun) -> None:
    spoken = run.step("session-0")["spoken"]
    assert spoken["playback"]["interruptions"] == "1"
    (truncate,) = events(spoken, "out", "conversation.item.truncate")
    assert truncate["count"] == "1"
    assert events(spoken, "in", "conversation.item.truncated")
    first, second = replies(spoken)
    assert first["note"].startswith("interrupted after "), first
    assert second["note"] == ""


def test_microphone_audio_went_out_in_100_ms_appends(run: ClientRun, scenario: Scenario) -> None:
    playback = run.step("session-0")["spoken"]["playback"]
    appends = int(playback["appends"])
    assert int(playback["sentMs"]) == 100 * appends
    assert appends >= 10 * (scenario.second[1] - scenario.first[0])  # all the speech, at least
    # Every append frame is the same size: 4800 bytes of audio, base64, in the same JSON.
    frames = events(run.step("session-0")["spoken"], "out", "input_audio_buffer.append")
    assert sum(int(frame["count"]) for frame in frames) == appends
    assert len({int(frame["bytes"]) // int(frame["count"]) for frame in frames}) == 1


def test_latency_is_measured_for_each_spoken_turn(run: ClientRun) -> None:
    latency = run.step("session-0")["spoken"]["latency"]
    assert latency["turns"] == "2"
    assert 0 < int(latency["lastMs"]) < 3000, latency


def test_typed_message_gets_a_typed_reply(run: ClientRun) -> None:
    session = run.step("session-0")
    typed, spoken = session["typed"], session["spoken"]
    assert typed["transcript"][-2] == {"role": "user", "text": TYPED, "note": ""}
    assert typed["transcript"][-1]["role"] == "assistant"
    assert typed["transcript"][-1]["text"].startswith(f"You said: {TYPED}.")
    assert typed["playback"]["chunks"] == spoken["playback"]["chunks"]  # text only: no audio came
    assert events(typed, "out", "conversation.item.create")
    assert events(typed, "in", "response.output_text.delta")


def test_usage_sums_every_response(run: ClientRun) -> None:
    usage = run.step("session-0")["typed"]["usage"]
    assert usage["responses"] == "3"
    assert int(usage["inputTokens"]) > 0
    assert int(usage["outputTokens"]) > 0
    assert "tokens over 3 responses" in usage["text"]


def test_disconnect_closes_the_session(run: ClientRun) -> None:
    closed = run.step("session-0")["closed"]
    assert closed["state"] == "closed"
    assert closed["status"] == "Disconnected (1000: bye)."


def test_a_screenshot_is_kept(run: ClientRun, paced_gateway: GatewayProcess) -> None:
    shot = ARTIFACTS / f"playground-{paced_gateway.runtime}.png"
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert shot.stat().st_size > 20_000  # a page, not a blank


# -- with the strict fake provider ----------------------------------------------------------------


def test_the_key_typed_into_the_page_reached_the_provider_and_nothing_was_refused(
    upstream: UpstreamConnection,
) -> None:
    check_strict_provider([upstream])  # Authorization: Bearer <the page's key>, no error event


def test_every_append_reached_the_provider_as_100_ms_of_audio(
    run: ClientRun, upstream: UpstreamConnection
) -> None:
    chunks = [
        base64.b64decode(event["audio"])
        for event in upstream.received
        if event["type"] == "input_audio_buffer.append"
    ]
    assert chunks
    assert {len(chunk) for chunk in chunks} == {CHUNK_BYTES}
    playback = run.step("session-1")["spoken"]["playback"]
    assert len(chunks) == int(playback["appends"])  # all of them, none lost or merged


def test_the_provider_heard_both_utterances_and_the_page_shows_its_replies(
    run: ClientRun, upstream: UpstreamConnection
) -> None:
    sent = [event["type"] for event in map(json.loads, upstream.sent)]
    assert sent.count("input_audio_buffer.speech_stopped") == 2
    session = run.step("session-1")
    assert [entry["text"] for entry in replies(session["spoken"])] == [REPLY_TEXT, REPLY_TEXT]
    assert int(session["spoken"]["playback"]["scheduledMs"]) > 0
    assert session["spoken"]["playback"]["gaps"] == "0"  # each reply's audio came in one burst
    typed = session["typed"]["transcript"]
    assert typed[-2:] == [
        {"role": "user", "text": TYPED, "note": ""},
        {"role": "assistant", "text": REPLY_TEXT, "note": ""},
    ]


# -- push to talk ----------------------------------------------------------------------------------


def test_push_to_talk_commits_what_was_held_and_gets_a_reply_per_hold(run: ClientRun) -> None:
    session = run.step("session-2")
    spoken = session["spoken"]
    said = [entry["text"] for entry in spoken["transcript"] if entry["role"] == "user"]
    answers = [entry["text"] for entry in replies(spoken)]
    assert len(said) == len(answers) == 2, spoken["transcript"]
    for held, heard in zip(session["held"], said, strict=True):
        # What was sent is what was held: the audio still in the worklet is flushed before the commit.
        assert abs(float(heard.removeprefix("(").split()[0]) - held) <= 0.3, (held, heard)
    for kind in ("input_audio_buffer.clear", "input_audio_buffer.commit", "response.create"):
        assert sum(int(e["count"]) for e in events(spoken, "out", kind)) == 2, kind
    assert not events(spoken, "in", "input_audio_buffer.speech_started")  # no server VAD
    assert abs(int(spoken["playback"]["sentMs"]) / 1000 - sum(session["held"])) <= 0.5
    assert spoken["latency"]["turns"] == "2"


def test_pressing_space_over_the_reply_stops_it(run: ClientRun) -> None:
    spoken = run.step("session-2")["spoken"]
    assert spoken["playback"]["interruptions"] == "1"
    assert events(spoken, "out", "conversation.item.truncate")
    assert replies(spoken)[0]["note"].startswith("interrupted")
