// One connection to the gateway, and the figures the page keeps about it. No DOM here.

// Characters a WebSocket subprotocol may hold (an HTTP token, RFC 9110 5.6.2).
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
const KEY_SUBPROTOCOL = 'openai-insecure-api-key.';

/** The ws(s):// URL of `path` on the gateway that served this page. */
export function gatewayUrl(location, path, query) {
  const url = new URL(path, location.href);
  url.protocol = location.protocol === 'https:' ? 'wss:' : 'ws:';
  for (const [name, value] of Object.entries(query)) if (value) url.searchParams.set(name, value);
  return url.href;
}

/**
 * The subprotocols to offer: `realtime`, and the key or gateway token the way browsers send one
 * (they cannot set headers). Throws if the key cannot be a subprotocol.
 */
export function subprotocols(key) {
  if (!key) return ['realtime'];
  if (!TOKEN.test(key)) throw new Error('the key has characters a WebSocket subprotocol cannot carry');
  return ['realtime', KEY_SUBPROTOCOL + key];
}

/**
 * A WebSocket speaking one endpoint's protocol. `handlers`: `open()`, `happening(h, event)`,
 * `frame(direction, event, size)` for every frame each way, `close(code, reason, opened)`.
 */
export class Connection {
  constructor(url, protocols, protocol, handlers) {
    this.protocol = protocol;
    this.read = protocol.reader();
    this.handlers = handlers;
    this.opened = false;
    this.socket = new WebSocket(url, protocols);
    this.socket.addEventListener('open', () => {
      this.opened = true;
      handlers.open();
    });
    this.socket.addEventListener('message', ({ data }) => this.receive(data));
    this.socket.addEventListener('close', ({ code, reason }) => handlers.close(code, reason, this.opened));
  }

  get open() {
    return this.socket.readyState === WebSocket.OPEN;
  }

  receive(data) {
    const size = typeof data === 'string' ? new TextEncoder().encode(data).length : data.byteLength ?? data.size;
    let event;
    try {
      event = JSON.parse(data);
    } catch {
      this.handlers.frame('in', { type: '(not JSON)' }, size);
      return;
    }
    this.handlers.frame('in', event, size);
    const happening = this.read(event);
    if (happening) this.handlers.happening(happening, event);
  }

  send(events) {
    for (const event of Array.isArray(events) ? events : [events]) {
      if (!this.open) return;
      const text = JSON.stringify(event);
      this.socket.send(text);
      // The page's own frames are ASCII JSON (base64 audio, escaped text): a character is a byte.
      this.handlers.frame('out', event, text.length);
    }
  }

  close() {
    if (this.socket.readyState <= WebSocket.OPEN) this.socket.close(1000, 'bye');
  }
}

/**
 * When each millisecond of the input audio was captured. Server VAD events count milliseconds from
 * the first sample appended in the session; this maps them back to the page's clock.
 */
export class AudioTimeline {
  constructor(limit = 1200) {
    this.limit = limit; // chunks kept: two minutes of 100 ms chunks
    this.chunks = [];
    this.totalMs = 0;
  }

  add(ms, capturedAt) {
    this.chunks.push({ startMs: this.totalMs, endMs: this.totalMs + ms, capturedAt });
    this.totalMs += ms;
    if (this.chunks.length > this.limit) this.chunks.splice(0, this.chunks.length - this.limit);
  }

  /** performance.now() when the audio at `audioMs` was captured, or null if not known. */
  capturedAt(audioMs) {
    for (let i = this.chunks.length - 1; i >= 0; i--) {
      const { startMs, endMs, capturedAt } = this.chunks[i];
      if (startMs <= audioMs && audioMs <= endMs) return capturedAt - (endMs - audioMs);
    }
    return null;
  }
}

/** Latency of each spoken turn: from the end of the user's speech to the first audio back. */
export class LatencyMeter {
  constructor() {
    this.waitingSince = null;
    this.values = [];
  }

  speechEnded(at) {
    this.waitingSince = at;
  }

  firstAudio(at) {
    if (this.waitingSince === null) return;
    this.values.push(Math.max(0, at - this.waitingSince));
    this.waitingSince = null;
  }

  cancel() {
    this.waitingSince = null;
  }

  get last() {
    return this.values.at(-1) ?? null;
  }

  get median() {
    if (!this.values.length) return null;
    const sorted = [...this.values].sort((a, b) => a - b);
    const middle = sorted.length >> 1;
    return sorted.length % 2 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
  }
}

/**
 * The hook for the gateway's own cost figure (USD) in a server event. No gateway event carries one
 * yet: when the gateway's usage accounting reports a cost to the client, read it here and the page
 * shows it beside the tokens, which it sums itself from each response.done meanwhile.
 */
export function gatewayCostOf(_event) {
  return null;
}

/** The session's tokens, summed from each response.done's usage; and the gateway's cost if told. */
export class UsageMeter {
  constructor() {
    this.responses = 0;
    this.input = { total: 0, text: 0, audio: 0, cached: 0 };
    this.output = { total: 0, text: 0, audio: 0 };
    this.costUsd = null;
  }

  /** A response ended (completed, cancelled, failed): count it, and its usage when it has one. */
  addResponse(usage) {
    this.responses += 1;
    if (!usage) return;
    const input = usage.input_token_details ?? {};
    const output = usage.output_token_details ?? {};
    this.input.total += usage.input_tokens ?? 0;
    this.input.text += input.text_tokens ?? 0;
    this.input.audio += input.audio_tokens ?? 0;
    this.input.cached += input.cached_tokens ?? 0;
    this.output.total += usage.output_tokens ?? 0;
    this.output.text += output.text_tokens ?? 0;
    this.output.audio += output.audio_tokens ?? 0;
  }

  observe(event) {
    const cost = gatewayCostOf(event);
    if (cost !== null) this.costUsd = cost;
  }
}
