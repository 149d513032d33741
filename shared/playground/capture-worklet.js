// The microphone's audio thread: PCM16 at 24 kHz in chunks of 100 ms, posted to the page.
//
// Runs in the AudioWorkletGlobalScope of the capture context. When that context runs at 24 kHz
// (the usual case: the browser resamples the microphone into it) samples are only converted;
// otherwise they are low-passed (a moving average as wide as the rate ratio) and resampled
// linearly, which is plenty for speech. Each chunk goes to the page as a transferred ArrayBuffer
// with its RMS level; a 'flush' message posts what is buffered at once (the end of a push to talk).

class Pcm16Capture extends AudioWorkletProcessor {
  constructor(options) {
    super();
    const { targetRate, chunkSamples } = options.processorOptions;
    this.step = sampleRate / targetRate; // input samples per output sample
    this.width = Math.max(1, Math.round(this.step)); // moving-average width when downsampling
    this.chunk = new Int16Array(chunkSamples);
    this.filled = 0;
    this.squares = 0;
    this.history = new Float32Array(this.width); // the last inputs, for the moving average
    this.historyAt = 0;
    this.sum = 0;
    this.previous = 0; // the last filtered input sample, for interpolation
    this.position = 0; // where the next output sample falls, in input samples from the block start
    this.port.onmessage = (message) => {
      if (message.data === 'flush') this.post(true);
    };
  }

  push(value) {
    const clamped = Math.max(-1, Math.min(1, value));
    this.chunk[this.filled++] = clamped < 0 ? clamped * 0x8000 : clamped * 0x7fff;
    this.squares += clamped * clamped;
    if (this.filled === this.chunk.length) this.post(false);
  }

  post(flushed) {
    const samples = this.chunk.slice(0, this.filled);
    const rms = this.filled ? Math.sqrt(this.squares / this.filled) : 0;
    this.filled = 0;
    this.squares = 0;
    this.port.postMessage({ pcm: samples.buffer, rms, flushed }, [samples.buffer]);
  }

  process(inputs) {
    const input = inputs[0]?.[0];
    if (!input) return true;
    if (this.step === 1) {
      for (let i = 0; i < input.length; i++) this.push(input[i]);
      return true;
    }
    for (let i = 0; i < input.length; i++) {
      this.sum += input[i] - this.history[this.historyAt];
      this.history[this.historyAt] = input[i];
      this.historyAt = (this.historyAt + 1) % this.width;
      const current = this.step > 1 ? this.sum / this.width : input[i];
      while (this.position <= i) {
        const fraction = this.position - (i - 1); // between the previous sample and this one
        this.push(this.previous + (current - this.previous) * fraction);
        this.position += this.step;
      }
      this.previous = current;
    }
    this.position -= input.length;
    return true;
  }
}

registerProcessor('pcm16-capture', Pcm16Capture);
