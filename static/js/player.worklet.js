// Playback worklet: a small jitter buffer of 24 kHz PCM16 chunks, played out at the context's own
// rate (linear interpolation), emptied at once on `interrupt` so barge-in silences the partner
// within one render quantum.

const DEFAULT_INPUT_RATE = 24000;
const STATS_EVERY_BLOCKS = 25; // ~70 ms at 48 kHz
const AUDIBLE_RMS = 0.005;

class Pcm16PlayerProcessor extends AudioWorkletProcessor {
  constructor(options) {
    super();
    const opts = (options && options.processorOptions) || {};
    this.inputRate = opts.inputRate || DEFAULT_INPUT_RATE;
    this.step = this.inputRate / sampleRate;
    // Start a turn only once this much audio is queued, so network jitter does not stutter.
    this.startSamples = Math.round(((opts.jitterMs || 80) * this.inputRate) / 1000);
    this.maxSamples = Math.round((opts.maxBufferS || 90) * this.inputRate);
    this.queue = [];
    this.head = 0; // read offset into queue[0]
    this.buffered = 0;
    this.playing = false;
    this.turnOpen = false; // more audio of this turn may come; an empty buffer is an underrun
    this.s0 = 0;
    this.s1 = 0;
    this.frac = 1;
    this.audibleBlocks = 0;
    this.blocks = 0;
    this.windowSquares = 0;
    this.windowSamples = 0;
    this.port.onmessage = (event) => this.onMessage(event.data);
  }

  onMessage(message) {
    if (message.type === 'pcm') {
      const chunk = new Int16Array(message.pcm);
      if (this.buffered + chunk.length > this.maxSamples) {
        this.port.postMessage({ type: 'overflow', droppedSamples: chunk.length });
        return;
      }
      this.queue.push(chunk);
      this.buffered += chunk.length;
      this.turnOpen = true;
    } else if (message.type === 'end-of-turn') {
      this.turnOpen = false; // play out what is left even if it is under the jitter threshold
    } else if (message.type === 'interrupt') {
      const dropped = this.buffered;
      this.reset();
      this.port.postMessage({ type: 'cleared', droppedMs: (dropped * 1000) / this.inputRate });
    }
  }

  reset() {
    this.queue = [];
    this.head = 0;
    this.buffered = 0;
    this.playing = false;
    this.turnOpen = false;
    this.s0 = 0;
    this.s1 = 0;
    this.frac = 1;
  }

  take() {
    while (this.queue.length > 0 && this.head >= this.queue[0].length) {
      this.queue.shift();
      this.head = 0;
    }
    if (this.queue.length === 0) return null;
    this.buffered--;
    return this.queue[0][this.head++] / 32768;
  }

  process(_inputs, outputs) {
    const out = outputs[0][0];
    if (!this.playing && this.buffered > 0 && (this.buffered >= this.startSamples || !this.turnOpen)) {
      this.playing = true;
      this.port.postMessage({ type: 'started', at: currentTime });
    }
    let written = 0;
    if (this.playing) {
      for (; written < out.length; written++) {
        while (this.frac >= 1) {
          const sample = this.take();
          if (sample === null) break;
          this.s0 = this.s1;
          this.s1 = sample;
          this.frac -= 1;
        }
        if (this.frac >= 1) break; // ran dry mid-block
        out[written] = this.s0 + (this.s1 - this.s0) * this.frac;
        this.frac += this.step;
      }
      if (written < out.length) {
        const underrun = this.turnOpen;
        this.playing = false;
        this.s0 = 0;
        this.s1 = 0;
        this.frac = 1;
        this.port.postMessage({ type: underrun ? 'underrun' : 'drained', at: currentTime });
      }
    }
    out.fill(0, written);
    this.measure(out);
    return true;
  }

  measure(out) {
    let squares = 0;
    for (let i = 0; i < out.length; i++) squares += out[i] * out[i];
    if (Math.sqrt(squares / out.length) > AUDIBLE_RMS) this.audibleBlocks++;
    this.windowSquares += squares;
    this.windowSamples += out.length;
    if (++this.blocks % STATS_EVERY_BLOCKS === 0) {
      this.port.postMessage({
        type: 'stats',
        rms: Math.sqrt(this.windowSquares / this.windowSamples),
        audibleBlocks: this.audibleBlocks,
        bufferedMs: (this.buffered * 1000) / this.inputRate,
        playing: this.playing,
      });
      this.windowSquares = 0;
      this.windowSamples = 0;
    }
  }
}

registerProcessor('pcm16-player', Pcm16PlayerProcessor);
