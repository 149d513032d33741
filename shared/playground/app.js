// The playground page: connect to the gateway that served it, talk and type, see what flowed.
import { audioContext, base64FromBytes, bytesFromBase64, Microphone, Player, SAMPLE_RATE } from './audio.js';
import { EventLog } from './eventlog.js';
import { LIVE, PROTOCOLS, REALTIME } from './protocols.js';
import { AudioTimeline, Connection, gatewayUrl, LatencyMeter, subprotocols, UsageMeter } from './session.js';

const $ = (id) => document.getElementById(id);
const ui = {
  status: $('status'),
  form: $('connect-form'),
  endpoint: $('endpoint'),
  provider: $('provider'),
  model: $('model'),
  key: $('key'),
  remember: $('remember-key'),
  connect: $('connect'),
  disconnect: $('disconnect'),
  transcript: $('transcript'),
  mic: $('mic'),
  talk: $('talk'),
  level: $('level'),
  textForm: $('text-form'),
  textInput: $('text-input'),
  send: $('send'),
  latency: $('latency'),
  usage: $('usage'),
  playback: $('playback'),
  events: $('events'),
};
// The key is kept in this tab's sessionStorage only when asked, and never sent anywhere but here.
const KEY_STORAGE = 'realtime-gateway.playground.key';
const NAMES = { user: 'You', assistant: 'Model', gateway: 'Gateway' };

/** The conversation as the page shows it: one line per item, filled as its deltas arrive. */
class Transcript {
  constructor(list) {
    this.list = list;
    this.entries = new Map();
    this.local = 0;
    this.following = true; // keep the newest line in view, until the user scrolls up
    list.addEventListener('scroll', () => {
      this.following = list.scrollTop + list.clientHeight >= list.scrollHeight - 16;
    });
  }

  follow() {
    if (this.following) this.list.scrollTop = this.list.scrollHeight;
  }

  clear() {
    this.list.replaceChildren();
    this.entries.clear();
  }

  entry(key, role) {
    let entry = this.entries.get(key);
    if (!entry) {
      const item = document.createElement('li');
      item.className = `turn ${role}`;
      Object.assign(item.dataset, { role, key });
      const who = Object.assign(document.createElement('span'), { className: 'who', textContent: NAMES[role] });
      const text = Object.assign(document.createElement('p'), { className: 'text' });
      const note = Object.assign(document.createElement('span'), { className: 'note' });
      item.append(who, text, note);
      this.list.append(item);
      entry = { item, text, note, placeholder: false };
      this.entries.set(key, entry);
    }
    return entry;
  }

  placeholder(key, role, text) {
    const entry = this.entry(key, role);
    if (!entry.text.textContent) {
      entry.text.textContent = text;
      entry.placeholder = true;
    }
    this.follow();
  }

  append(key, role, delta) {
    const entry = this.entry(key, role);
    if (entry.placeholder) [entry.text.textContent, entry.placeholder] = ['', false];
    entry.text.textContent += delta ?? '';
    this.follow();
  }

  set(key, role, text) {
    const entry = this.entry(key, role);
    [entry.text.textContent, entry.placeholder] = [text ?? '', false];
    this.follow();
  }

  note(key, text) {
    const entry = this.entries.get(key);
    if (entry) entry.note.textContent = text;
    this.follow();
  }

  add(role, text, kind = '') {
    const key = `local-${++this.local}`;
    this.set(key, role, text);
    if (kind) this.entries.get(key).item.classList.add(kind);
  }
}

const transcript = new Transcript(ui.transcript);
const log = new EventLog(ui.events);
const state = {
  context: null,
  player: null,
  mic: null,
  connection: null,
  protocol: REALTIME,
  options: null,
  ready: false,
  talking: false,
  finishing: false,
  responseActive: false,
  timeline: new AudioTimeline(),
  latency: new LatencyMeter(),
  usage: new UsageMeter(),
  appends: 0,
};

function setStatus(kind, text) {
  ui.status.dataset.state = kind;
  ui.status.textContent = text;
}

function selectedTurns() {
  return ui.form.elements.turns.value;
}

function setControls() {
  const connected = state.connection !== null;
  const micOn = state.mic?.on ?? false;
  const protocol = PROTOCOLS[ui.endpoint.value] ?? REALTIME;
  for (const field of [ui.endpoint, ui.provider, ui.model, ui.key, ...ui.form.elements.turns]) field.disabled = connected;
  ui.form.querySelector('input[value="push_to_talk"]').disabled = connected || !protocol.pushToTalk;
  ui.connect.disabled = connected;
  ui.disconnect.disabled = !connected;
  ui.mic.disabled = !state.ready || !state.context;
  ui.mic.setAttribute('aria-pressed', String(micOn));
  ui.mic.textContent = micOn ? 'Microphone on' : 'Microphone off';
  ui.talk.hidden = (state.options?.turns ?? selectedTurns()) !== 'push_to_talk';
  ui.talk.disabled = !state.ready || !micOn;
  ui.talk.setAttribute('aria-pressed', String(state.talking));
  ui.talk.textContent = state.talking ? 'Talking: release to send' : 'Hold to talk';
  const typing = state.ready && state.protocol.typing;
  ui.textInput.disabled = !typing;
  ui.send.disabled = !typing;
  ui.textInput.placeholder = state.ready && !state.protocol.typing ? 'This endpoint takes speech only' : 'Type a message';
}

// -- figures -------------------------------------------------------------------------------------

let figuresQueued = false;
function renderFiguresSoon() {
  if (figuresQueued) return;
  figuresQueued = true;
  requestAnimationFrame(() => {
    figuresQueued = false;
    renderFigures();
  });
}

const count = (n, noun) => `${n} ${noun}${n === 1 ? '' : 's'}`;

function renderFigures() {
  const { latency, usage, player, timeline } = state;
  if (latency.last === null) ui.latency.textContent = '–';
  else {
    const turns = latency.values.length;
    ui.latency.textContent =
      `${Math.round(latency.last)} ms` + (turns > 1 ? ` (median ${Math.round(latency.median)} ms over ${turns} turns)` : '');
  }
  Object.assign(ui.latency.dataset, { lastMs: String(Math.round(latency.last ?? -1)), turns: String(latency.values.length) });

  const { input, output } = usage;
  if (!usage.responses) ui.usage.textContent = '–';
  else {
    const cost = usage.costUsd === null ? 'cost not reported by this gateway' : `$${usage.costUsd.toFixed(4)}`;
    ui.usage.textContent =
      `${input.total + output.total} tokens over ${count(usage.responses, 'response')}: ` +
      `${input.total} in (text ${input.text}, audio ${input.audio}, cached ${input.cached}), ` +
      `${output.total} out (text ${output.text}, audio ${output.audio}); ${cost}`;
  }
  Object.assign(ui.usage.dataset, {
    responses: String(usage.responses),
    inputTokens: String(input.total),
    outputTokens: String(output.total),
  });

  const scheduled = player?.scheduledSeconds ?? 0;
  ui.playback.textContent =
    `Microphone: ${(timeline.totalMs / 1000).toFixed(1)} s sent in ${count(state.appends, 'append')}. ` +
    `Replies: ${scheduled.toFixed(1)} s scheduled for playback in ${count(player?.chunks ?? 0, 'chunk')}, ` +
    `${count(player?.gaps ?? 0, 'gap')}, ${count(player?.interruptions ?? 0, 'barge-in')}.`;
  Object.assign(ui.playback.dataset, {
    sentMs: String(Math.round(timeline.totalMs)),
    appends: String(state.appends),
    scheduledMs: String(Math.round(scheduled * 1000)),
    chunks: String(player?.chunks ?? 0),
    gaps: String(player?.gaps ?? 0),
    interruptions: String(player?.interruptions ?? 0),
  });
}

// -- the connection ------------------------------------------------------------------------------

function send(events) {
  state.connection?.send(events);
}

/** The user takes the turn: stop the response under way first, then its audio (barge-in). */
function interruptReply() {
  if (state.responseActive) send(state.protocol.cancel());
  bargeIn();
}

/** The user speaks over the model: stop its audio, and tell the provider how much was heard. */
function bargeIn() {
  const cut = state.player?.playing ? state.player.interrupt() : null;
  if (!cut) return;
  send(state.protocol.truncate(cut.itemId, cut.playedMs));
  transcript.note(cut.itemId, 'interrupted');
  renderFiguresSoon();
}

const ON = {
  ready({ id, model }) {
    state.ready = true;
    send(state.protocol.configure(state.options));
    const { provider } = state.options;
    setStatus('open', `Connected: ${provider} · ${model ?? state.options.model}${id ? ` · ${id}` : ''}`);
    setControls();
  },
  'speech-started'() {
    bargeIn(); // the provider's server VAD cancels the response itself
  },
  'speech-stopped'({ audioMs }) {
    const at = typeof audioMs === 'number' ? state.timeline.capturedAt(audioMs) : null;
    state.latency.speechEnded(at ?? performance.now());
  },
  'user-audio'({ itemId }) {
    transcript.placeholder(itemId, 'user', '(speech)');
  },
  'user-transcript'({ itemId, delta, text }) {
    if (text !== undefined) transcript.set(itemId, 'user', text);
    else transcript.append(itemId, 'user', delta);
  },
  'response-started'() {
    state.responseActive = true;
  },
  'assistant-audio'({ itemId, audio }) {
    state.latency.firstAudio(performance.now());
    if (typeof audio === 'string') state.player?.enqueue(itemId, bytesFromBase64(audio));
    renderFiguresSoon();
  },
  'assistant-text'({ itemId, delta }) {
    transcript.append(itemId, 'assistant', delta);
  },
  'response-done'({ usage }) {
    state.responseActive = false;
    state.usage.addResponse(usage);
    renderFiguresSoon();
  },
  truncated({ itemId, audioMs }) {
    transcript.note(itemId, `interrupted after ${(audioMs / 1000).toFixed(1)} s`);
  },
  error({ code, message }) {
    transcript.add('gateway', `${code ?? 'error'}: ${message ?? ''}`, 'error');
  },
};

const handlers = {
  open() {
    setStatus('connecting', 'Connected; waiting for the session…');
    send(state.protocol.opening(state.options));
  },
  frame(direction, event, size) {
    log.add(direction, event, size);
    if (direction === 'in') state.usage.observe(event);
  },
  happening(happening, event) {
    ON[happening.kind]?.(happening, event);
  },
  close(code, reason, opened) {
    stopMicrophone();
    state.player?.stop();
    Object.assign(state, { connection: null, ready: false, talking: false, responseActive: false });
    state.latency.cancel();
    if (opened) setStatus('closed', `Disconnected (${code}${reason ? `: ${reason}` : ''}).`);
    else {
      setStatus(
        'error',
        `The gateway did not open the session (${code}). If it runs with AUTH_MODE=token, give a gateway ` +
          `token; if ALLOWED_ORIGINS is set, it must list this page's origin, ${location.origin}.`,
      );
    }
    setControls();
    renderFigures();
  },
};

async function connect() {
  if (state.connection) return;
  const protocol = PROTOCOLS[ui.endpoint.value] ?? REALTIME;
  const options = {
    provider: ui.provider.value,
    model: ui.model.value.trim(),
    turns: protocol.pushToTalk ? selectedTurns() : 'server_vad',
  };
  if (!options.model) {
    setStatus('error', 'Name a model.');
    ui.model.focus();
    return;
  }
  const key = ui.key.value.trim();
  let offered;
  try {
    offered = subprotocols(key);
  } catch (error) {
    setStatus('error', `Cannot connect: ${error.message}.`);
    return;
  }
  rememberKey(key);
  try {
    state.context ??= await audioContext(); // in the click: browsers start audio only on a gesture
  } catch (error) {
    transcript.add('gateway', `No audio in this browser (${error.message}): text only.`, 'error');
  }
  state.player?.stop();
  Object.assign(state, {
    protocol,
    options,
    player: state.context ? new Player(state.context) : null,
    timeline: new AudioTimeline(),
    latency: new LatencyMeter(),
    usage: new UsageMeter(),
    appends: 0,
  });
  transcript.clear();
  log.reset();
  const url = gatewayUrl(location, protocol.path, protocol.query(options));
  setStatus('connecting', `Connecting to ${url}…`);
  try {
    state.connection = new Connection(url, offered, protocol, handlers);
  } catch (error) {
    setStatus('error', `Cannot connect: ${error.message}`);
  }
  setControls();
  renderFigures();
}

// -- the microphone ------------------------------------------------------------------------------

function onChunk({ pcm, rms, capturedAt }) {
  ui.level.value = Math.min(1, rms * 4);
  const streaming = state.options?.turns === 'server_vad' || state.talking || state.finishing;
  if (!state.ready || !streaming) return;
  send(state.protocol.append(base64FromBytes(pcm)));
  state.appends += 1;
  state.timeline.add((pcm.length / 2 / SAMPLE_RATE) * 1000, capturedAt);
  renderFiguresSoon();
}

async function toggleMicrophone() {
  if (state.mic?.on) {
    stopMicrophone();
    setControls();
    return;
  }
  const mic = new Microphone(state.context, onChunk);
  ui.mic.disabled = true;
  ui.mic.textContent = 'Starting the microphone…';
  try {
    await mic.start();
    state.mic = mic;
  } catch (error) {
    transcript.add('gateway', `Microphone: ${error.message}`, 'error');
  }
  setControls();
}

function stopMicrophone() {
  state.mic?.stop();
  state.mic = null;
  state.talking = state.finishing = false;
  ui.level.value = 0;
}

function startTalking() {
  if (state.talking || ui.talk.disabled || ui.talk.hidden) return;
  interruptReply();
  send(state.protocol.startTalking());
  state.talking = true;
  setControls();
}

async function stopTalking() {
  if (!state.talking) return;
  const releasedAt = performance.now();
  state.talking = false;
  state.finishing = true; // the audio still in the worklet goes out before the commit
  setControls();
  await state.mic?.flush();
  state.finishing = false;
  send(state.protocol.stopTalking());
  state.latency.speechEnded(releasedAt);
}

// -- typing --------------------------------------------------------------------------------------

function sendText() {
  const text = ui.textInput.value.trim();
  if (!text || !state.ready) return;
  interruptReply();
  transcript.add('user', text);
  send(state.protocol.say(text));
  ui.textInput.value = '';
}

// -- the key -------------------------------------------------------------------------------------

function rememberKey(key) {
  if (ui.remember.checked && key) sessionStorage.setItem(KEY_STORAGE, key);
  else sessionStorage.removeItem(KEY_STORAGE);
}

// -- wiring --------------------------------------------------------------------------------------

ui.form.addEventListener('submit', (event) => {
  event.preventDefault();
  connect();
});
ui.disconnect.addEventListener('click', () => state.connection?.close());
ui.mic.addEventListener('click', toggleMicrophone);
ui.textForm.addEventListener('submit', (event) => {
  event.preventDefault();
  sendText();
});
ui.remember.addEventListener('change', () => rememberKey(ui.key.value.trim()));
ui.endpoint.addEventListener('change', setControls);
for (const radio of ui.form.elements.turns) radio.addEventListener('change', setControls);

ui.talk.addEventListener('pointerdown', (event) => {
  event.preventDefault();
  ui.talk.setPointerCapture(event.pointerId);
  startTalking();
});
for (const name of ['pointerup', 'pointercancel', 'lostpointercapture']) ui.talk.addEventListener(name, stopTalking);
// Space holds the talk button from anywhere but a text field (Enter works on the focused button).
const TYPING = new Set(['INPUT', 'SELECT', 'TEXTAREA']);
const talkKey = (event) =>
  (event.code === 'Space' && !TYPING.has(event.target.tagName)) || (event.code === 'Enter' && event.target === ui.talk);
document.addEventListener('keydown', (event) => {
  if (!talkKey(event) || ui.talk.hidden || ui.talk.disabled) return;
  event.preventDefault();
  if (!event.repeat) startTalking();
});
document.addEventListener('keyup', (event) => {
  if (talkKey(event) && state.talking) {
    event.preventDefault();
    stopTalking();
  }
});

/** Offer /v1/live/sessions when this gateway serves it (it answers a plain GET with 426). */
async function probeEndpoints() {
  const option = ui.endpoint.querySelector(`option[value="${LIVE.path}"]`);
  try {
    const answer = await fetch(LIVE.path, { headers: { accept: 'application/json' } });
    if (answer.status === 426) {
      option.disabled = false;
      option.textContent = `${LIVE.path} (GPT-Live)`;
    }
  } catch {
    // Not served: the option stays disabled.
  }
}

const remembered = sessionStorage.getItem(KEY_STORAGE);
if (remembered) {
  ui.key.value = remembered;
  ui.remember.checked = true;
}
setControls();
renderFigures();
probeEndpoints();
