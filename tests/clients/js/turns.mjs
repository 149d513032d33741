// The turns every raw-protocol client holds, shared by the Node scripts and the browser page:
// no imports and no Node APIs, only what both a browser and Node 22 have (btoa, atob, TextEncoder).
//
// A "connection" here is anything with `send(event)` (an object, serialised by the client under
// test) and `next(timeoutMs)` (the next server event, parsed), so each client keeps its own
// socket and framing while the turns and what they measure are the same for all of them.

export const USER_TEXT = 'Bonjour, "gateway"! ✓';
export const PCM16_RATE = 24000;

// Server event names that differ between the GA interface and the beta one.
export const NAMES = {
  ga: {
    text: 'response.output_text.delta',
    audio: 'response.output_audio.delta',
    transcript: 'response.output_audio_transcript.delta',
  },
  beta: {
    text: 'response.text.delta',
    audio: 'response.audio.delta',
    transcript: 'response.audio_transcript.delta',
  },
};

/** The session.update `session` asking for text or spoken replies, in the client's interface. */
export function sessionFor(protocol, modality) {
  if (protocol === 'ga') {
    return { type: 'realtime', output_modalities: [modality] };
  }
  return { modalities: modality === 'text' ? ['text'] : ['audio', 'text'] };
}

/** One second of a 440 Hz tone (speech to an energy VAD) and 0.8 s of silence, PCM16 LE mono. */
export function speechPcm16({ toneSeconds = 1, silenceSeconds = 0.8, rate = PCM16_RATE } = {}) {
  const tone = Math.round(toneSeconds * rate);
  const total = tone + Math.round(silenceSeconds * rate);
  const bytes = new Uint8Array(total * 2);
  const view = new DataView(bytes.buffer);
  for (let i = 0; i < tone; i++) {
    view.setInt16(i * 2, Math.round(8000 * Math.sin((2 * Math.PI * 440 * i) / rate)), true);
  }
  return bytes;
}

export function toBase64(bytes) {
  let binary = '';
  for (let i = 0; i < bytes.length; i += 0x8000) {
    binary += String.fromCharCode.apply(null, bytes.subarray(i, i + 0x8000));
  }
  return btoa(binary);
}

export function fromBase64(text) {
  const binary = atob(text);
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
  return bytes;
}

/** Server events in arrival order; `next` waits for the next one (or fails after `timeoutMs`). */
export class EventQueue {
  constructor() {
    this.events = [];
    this.waiters = [];
    this.closed = null;
  }

  push(event) {
    const waiter = this.waiters.shift();
    if (waiter) waiter.resolve(event);
    else this.events.push(event);
  }

  close(reason) {
    this.closed = reason;
    for (const waiter of this.waiters.splice(0)) waiter.reject(new Error(`connection closed: ${reason}`));
  }

  next(timeoutMs) {
    if (this.events.length) return Promise.resolve(this.events.shift());
    if (this.closed !== null) return Promise.reject(new Error(`connection closed: ${this.closed}`));
    return new Promise((resolve, reject) => {
      const waiter = {
        resolve: (event) => {
          clearTimeout(timer);
          resolve(event);
        },
        reject: (error) => {
          clearTimeout(timer);
          reject(error);
        },
      };
      const timer = setTimeout(() => {
        this.waiters.splice(this.waiters.indexOf(waiter), 1);
        reject(new Error(`no server event within ${timeoutMs} ms`));
      }, timeoutMs);
      this.waiters.push(waiter);
    });
  }
}

/** Every event up to and including the first of `type` (an `error` event ends the wait too). */
export async function until(conn, type, timeoutMs = 15000) {
  const seen = [];
  for (;;) {
    const event = await conn.next(timeoutMs);
    seen.push(event);
    if (event.type === type) return seen;
    if (event.type === 'error') return seen;
  }
}

/** What a turn's events amount to: the reply's text, transcript and audio, and any errors. */
export function summarize(step, protocol, events) {
  const names = NAMES[protocol];
  const of = (type) => events.filter((event) => event.type === type);
  let audioBytes = 0;
  let oddChunks = 0;
  let peak = 0;
  for (const event of of(names.audio)) {
    const chunk = fromBase64(event.delta);
    audioBytes += chunk.length;
    if (chunk.length % 2) oddChunks += 1;
    const view = new DataView(chunk.buffer, chunk.byteOffset, chunk.length - (chunk.length % 2));
    for (let i = 0; i < view.byteLength; i += 2) peak = Math.max(peak, Math.abs(view.getInt16(i, true)));
  }
  const done = of('response.done').at(-1);
  return {
    step,
    protocol,
    types: [...new Set(events.map((event) => event.type))], // in order of first arrival
    text: of(names.text).map((event) => event.delta).join(''),
    transcript: of(names.transcript).map((event) => event.delta).join(''),
    audio_bytes: audioBytes,
    audio_odd_chunks: oddChunks,
    audio_peak: peak,
    status: done?.response?.status ?? null,
    errors: of('error').map((event) => event.error),
  };
}

/** A text turn: text replies asked for, a user message, response.create, up to response.done. */
export async function textTurn(conn, protocol) {
  conn.send({ type: 'session.update', session: sessionFor(protocol, 'text') });
  const events = await until(conn, 'session.updated');
  conn.send({
    type: 'conversation.item.create',
    item: { type: 'message', role: 'user', content: [{ type: 'input_text', text: USER_TEXT }] },
  });
  conn.send({ type: 'response.create' });
  events.push(...(await until(conn, 'response.done')));
  return summarize('text', protocol, events);
}

/** An audio turn: spoken replies asked for, PCM16 speech appended in 100 ms chunks; server VAD
 * commits it and starts the response, which is read up to response.done. */
export async function audioTurn(conn, protocol) {
  conn.send({ type: 'session.update', session: sessionFor(protocol, 'audio') });
  const events = await until(conn, 'session.updated');
  const pcm = speechPcm16();
  const chunk = (PCM16_RATE / 10) * 2;
  for (let offset = 0; offset < pcm.length; offset += chunk) {
    conn.send({ type: 'input_audio_buffer.append', audio: toBase64(pcm.subarray(offset, offset + chunk)) });
  }
  events.push(...(await until(conn, 'response.done')));
  return summarize('audio', protocol, events);
}
