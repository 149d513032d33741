// Audio for the playground: the microphone as 100 ms chunks of PCM16 at 24 kHz, and gapless playback
// of the model's PCM16 with barge-in.

export const SAMPLE_RATE = 24000; // the Realtime API's audio/pcm rate, both ways
export const CHUNK_MS = 100; // one input_audio_buffer.append: 4800 bytes
const CHUNK_SAMPLES = (SAMPLE_RATE * CHUNK_MS) / 1000;
// Playback starts this far ahead of the clock: the next chunks, scheduled back to back, join without
// a gap as long as none comes later than this after the audio so far has played out. Providers
// stream faster than real time, so only the first chunks are at risk; 100 ms absorbs a stalled tab
// or a network hiccup at the cost of 100 ms more before the first word is heard.
const PLAYBACK_LEAD_S = 0.1;

/** An AudioContext at 24 kHz (what both directions speak), created in a user gesture. */
export async function audioContext() {
  const context = new AudioContext({ sampleRate: SAMPLE_RATE, latencyHint: 'interactive' });
  await context.resume();
  return context;
}

export function base64FromBytes(bytes) {
  let binary = '';
  for (let i = 0; i < bytes.length; i += 0x8000) {
    binary += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  }
  return btoa(binary);
}

export function bytesFromBase64(text) {
  const binary = atob(text);
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
  return bytes;
}

/**
 * The microphone: `onChunk({ pcm: Uint8Array, rms, capturedAt, flushed })` every 100 ms while on
 * (`capturedAt`: performance.now() when the chunk's last sample was taken, near enough).
 */
export class Microphone {
  constructor(context, onChunk) {
    this.context = context;
    this.onChunk = onChunk;
    this.stream = null;
    this.nodes = [];
    this.flushed = null;
  }

  get on() {
    return this.stream !== null;
  }

  async start() {
    if (!window.isSecureContext) {
      throw new Error('the microphone needs a secure page: open the playground over https, or on localhost');
    }
    this.stream = await navigator.mediaDevices.getUserMedia({
      audio: { channelCount: 1, echoCancellation: true, noiseSuppression: true, autoGainControl: true },
    });
    try {
      let context = this.context;
      let source;
      try {
        source = context.createMediaStreamSource(this.stream);
      } catch (error) {
        // Some browsers will not resample a microphone into a 24 kHz context: capture at the
        // device's rate instead, and let the worklet resample.
        if (error.name !== 'NotSupportedError') throw error;
        context = this.ownContext = new AudioContext();
        await context.resume();
        source = context.createMediaStreamSource(this.stream);
      }
      await context.audioWorklet.addModule(new URL('./capture-worklet.js', import.meta.url));
      const capture = new AudioWorkletNode(context, 'pcm16-capture', {
        numberOfInputs: 1,
        numberOfOutputs: 1,
        channelCount: 1,
        channelCountMode: 'explicit',
        processorOptions: { targetRate: SAMPLE_RATE, chunkSamples: CHUNK_SAMPLES },
      });
      capture.port.onmessage = ({ data }) => {
        const pcm = new Uint8Array(data.pcm);
        if (pcm.length) this.onChunk({ pcm, rms: data.rms, capturedAt: performance.now(), flushed: data.flushed });
        if (data.flushed && this.flushed) {
          this.flushed();
          this.flushed = null;
        }
      };
      // The worklet is pulled by the graph only when it leads somewhere: a muted path to the speakers.
      const mute = new GainNode(context, { gain: 0 });
      source.connect(capture).connect(mute).connect(context.destination);
      this.nodes = [source, capture, mute];
    } catch (error) {
      this.stop();
      throw error;
    }
  }

  /** Resolves once the audio captured so far has gone to `onChunk` (the end of a push to talk). */
  flush() {
    const capture = this.nodes[1];
    if (!capture) return Promise.resolve();
    return new Promise((resolve) => {
      this.flushed = resolve;
      capture.port.postMessage('flush');
    });
  }

  stop() {
    for (const node of this.nodes) node.disconnect();
    this.nodes = [];
    this.stream?.getTracks().forEach((track) => track.stop());
    this.stream = null;
    this.ownContext?.close();
    this.ownContext = null;
    this.flushed?.();
    this.flushed = null;
  }
}

/**
 * Plays the model's PCM16 chunks back to back on the context's clock (no gap between chunks that
 * arrive in time), per output item, so a barge-in can stop it and say how much was heard.
 */
export class Player {
  constructor(context) {
    this.context = context;
    this.output = new GainNode(context);
    this.output.connect(context.destination);
    this.sources = new Set();
    this.nextStart = 0; // context time at which the next chunk starts
    this.items = new Map(); // item id -> { start, end } in context time
    this.chunks = 0;
    this.scheduledSeconds = 0;
    this.gaps = 0; // chunks that arrived after the previous one had finished playing
    this.interruptions = 0;
  }

  get playing() {
    return this.nextStart > this.context.currentTime;
  }

  /** Schedule `pcm` (PCM16 LE bytes at 24 kHz) for `itemId` right after what is already scheduled. */
  enqueue(itemId, pcm) {
    const count = pcm.length >> 1;
    if (!count) return;
    const view = new DataView(pcm.buffer, pcm.byteOffset, count * 2);
    const samples = new Float32Array(count);
    for (let i = 0; i < count; i++) samples[i] = view.getInt16(2 * i, true) / 0x8000;
    const buffer = new AudioBuffer({ length: count, sampleRate: SAMPLE_RATE, numberOfChannels: 1 });
    buffer.copyToChannel(samples, 0);
    const source = new AudioBufferSourceNode(this.context, { buffer });
    source.connect(this.output);
    const now = this.context.currentTime;
    for (const [id, { end }] of this.items) if (id !== itemId && end < now) this.items.delete(id);
    const item = this.items.get(itemId);
    if (item && item.end < now) this.gaps += 1; // the item's audio ran dry before this chunk came
    const start = Math.max(this.nextStart, now + PLAYBACK_LEAD_S);
    source.start(start);
    source.onended = () => this.sources.delete(source);
    this.sources.add(source);
    this.nextStart = start + buffer.duration;
    this.items.set(itemId, { start: item?.start ?? start, end: this.nextStart });
    this.chunks += 1;
    this.scheduledSeconds += buffer.duration;
  }

  /**
   * Stop at once (the user spoke over the model). Returns the item that was playing and how many
   * milliseconds of it were heard, for conversation.item.truncate; null if nothing was playing.
   */
  interrupt() {
    const now = this.context.currentTime;
    let cut = null;
    for (const [itemId, { start, end }] of this.items) {
      if (start <= now + PLAYBACK_LEAD_S && now < end) cut = { itemId, playedMs: Math.max(0, Math.floor((now - start) * 1000)) };
    }
    this.stop();
    if (cut) this.interruptions += 1;
    return cut;
  }

  stop() {
    for (const source of this.sources) {
      source.onended = null;
      source.stop();
      source.disconnect();
    }
    this.sources.clear();
    this.items.clear();
    this.nextStart = 0;
  }
}
