// Capture worklet: resamples the microphone to 16 kHz mono PCM16 inside the audio thread and
// posts ready-to-send frames (transferred ArrayBuffers), so the main thread never touches samples.
// The AudioContext keeps the device's native rate (`sampleRate` below); we do not force it,
// because a forced capture rate makes some browsers resample badly or refuse the mic.

const DEFAULT_TARGET_RATE = 16000;
const DEFAULT_FRAME_MS = 40;

class Pcm16RecorderProcessor extends AudioWorkletProcessor {
  constructor(options) {
    super();
    const opts = (options && options.processorOptions) || {};
    this.targetRate = opts.targetRate || DEFAULT_TARGET_RATE;
    const frameMs = Math.min(100, Math.max(20, opts.frameMs || DEFAULT_FRAME_MS));
    this.frameSamples = Math.round((this.targetRate * frameMs) / 1000);
    // Input samples per output sample (3 at 48 kHz, 2.75625 at 44.1 kHz).
    this.ratio = sampleRate / this.targetRate;
    // Box-filter decimator: each output sample is the mean of the input over one output period,
    // with fractional weights at the edges. A plain pick-every-nth would alias sibilants.
    this.acc = 0; // weighted sum of the output sample being built
    this.accWeight = 0; // how much of the current output period is filled (0..ratio)
    this.frame = new Int16Array(this.frameSamples);
    this.filled = 0;
    this.sumSquares = 0;
    this.peak = 0;
    this.port.onmessage = (event) => {
      if (event.data && event.data.type === 'flush') this.flush();
    };
  }

  pushSample(value) {
    const clamped = Math.max(-1, Math.min(1, value));
    // Asymmetric range of int16: -32768..32767.
    this.frame[this.filled++] = clamped < 0 ? clamped * 0x8000 : clamped * 0x7fff;
    this.sumSquares += clamped * clamped;
    const magnitude = Math.abs(clamped);
    if (magnitude > this.peak) this.peak = magnitude;
    if (this.filled === this.frameSamples) this.flush();
  }

  flush() {
    if (this.filled === 0) return;
    const pcm = this.frame.slice(0, this.filled);
    const rms = Math.sqrt(this.sumSquares / this.filled);
    this.port.postMessage({ type: 'frame', pcm: pcm.buffer, rms, peak: this.peak }, [pcm.buffer]);
    this.filled = 0;
    this.sumSquares = 0;
    this.peak = 0;
  }

  process(inputs) {
    const input = inputs[0];
    if (!input || input.length === 0) return true; // no device yet: keep the node alive
    const channel = input[0];
    const channels = input.length;
    for (let i = 0; i < channel.length; i++) {
      let sample = channel[i];
      // Down-mix if the device delivered stereo despite channelCount: 1.
      if (channels > 1) {
        for (let c = 1; c < channels; c++) sample += input[c][i];
        sample /= channels;
      }
      let weight = 1;
      while (weight > 0) {
        const room = this.ratio - this.accWeight;
        const take = weight < room ? weight : room;
        this.acc += sample * take;
        this.accWeight += take;
        weight -= take;
        if (this.accWeight >= this.ratio - 1e-9) {
          this.pushSample(this.acc / this.ratio);
          this.acc = 0;
          this.accWeight = 0;
        }
      }
    }
    return true;
  }
}

registerProcessor('pcm16-recorder', Pcm16RecorderProcessor);
