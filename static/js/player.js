// Partner voice playback: 24 kHz PCM16 chunks from the socket -> jitter-buffered AudioWorklet.
// Emits `started` (first audio of a turn is audible), `drained`, `cleared` (barge-in) and `stats`.

const WORKLET_URL = new URL('./player.worklet.js', import.meta.url);
const loadedContexts = new WeakSet();

export class PcmPlayer extends EventTarget {
  /**
   * @param {AudioContext} context
   * @param {{inputRate?: number, jitterMs?: number}} [options]
   */
  constructor(context, { inputRate = 24000, jitterMs = 80 } = {}) {
    super();
    this.context = context;
    this.inputRate = inputRate;
    this.jitterMs = jitterMs;
    this.node = null;
    this.gain = null;
    /** Latest numbers from the worklet, read by the page and by tests. */
    this.stats = { rms: 0, audibleBlocks: 0, bufferedMs: 0, playing: false, clears: 0, lastDroppedMs: 0 };
  }

  async start() {
    if (!loadedContexts.has(this.context)) {
      await this.context.audioWorklet.addModule(WORKLET_URL);
      loadedContexts.add(this.context);
    }
    this.node = new AudioWorkletNode(this.context, 'pcm16-player', {
      numberOfInputs: 0,
      numberOfOutputs: 1,
      outputChannelCount: [1],
      processorOptions: { inputRate: this.inputRate, jitterMs: this.jitterMs },
    });
    this.gain = this.context.createGain();
    this.node.connect(this.gain).connect(this.context.destination);
    this.node.port.onmessage = (event) => this.onWorkletMessage(event.data);
  }

  onWorkletMessage(message) {
    if (message.type === 'stats') {
      Object.assign(this.stats, {
        rms: message.rms,
        audibleBlocks: message.audibleBlocks,
        bufferedMs: message.bufferedMs,
        playing: message.playing,
      });
    } else if (message.type === 'cleared') {
      this.stats.clears += 1;
      this.stats.lastDroppedMs = message.droppedMs;
      this.stats.bufferedMs = 0;
      this.stats.playing = false;
    }
    this.dispatchEvent(new CustomEvent(message.type, { detail: message }));
  }

  /** @param {ArrayBuffer} pcm PCM16 LE mono at inputRate; ownership moves to the worklet. */
  enqueue(pcm) {
    if (!this.node || pcm.byteLength < 2) return;
    const whole = pcm.byteLength % 2 ? pcm.slice(0, pcm.byteLength - 1) : pcm;
    this.node.port.postMessage({ type: 'pcm', pcm: whole }, [whole]);
  }

  /** The partner finished its turn: play out the tail even if it is under the jitter threshold. */
  endOfTurn() {
    if (this.node) this.node.port.postMessage({ type: 'end-of-turn' });
  }

  /** Barge-in: drop everything queued, now. */
  interrupt() {
    if (this.node) this.node.port.postMessage({ type: 'interrupt' });
  }

  setVolume(value) {
    if (this.gain) this.gain.gain.setTargetAtTime(value, this.context.currentTime, 0.02);
  }

  stop() {
    if (this.node) {
      this.node.port.onmessage = null;
      this.node.disconnect();
    }
    if (this.gain) this.gain.disconnect();
    this.node = null;
    this.gain = null;
  }
}
