// Microphone capture: getUserMedia (echo cancellation on) -> AudioWorklet -> 16 kHz PCM16 frames.
// Emits `frame` events ({pcm: ArrayBuffer, rms, peak}) and `ended` when the device goes away.

const WORKLET_URL = new URL('./recorder.worklet.js', import.meta.url);
const loadedContexts = new WeakSet();

/** Why the microphone could not be used; `kind` drives the guidance the page shows. */
export class MicError extends Error {
  /**
   * @param {'unsupported'|'insecure'|'denied'|'missing'|'busy'|'failed'} kind
   * @param {string} message
   */
  constructor(kind, message) {
    super(message);
    this.name = 'MicError';
    this.kind = kind;
  }
}

/** @returns {Promise<'granted'|'denied'|'prompt'|'unknown'>} without prompting the user. */
export async function microphonePermission() {
  try {
    const status = await navigator.permissions.query({ name: 'microphone' });
    return status.state;
  } catch {
    return 'unknown'; // Firefox and older Safari cannot query the microphone permission
  }
}

function micErrorFrom(error) {
  switch (error && error.name) {
    case 'NotAllowedError':
    case 'PermissionDeniedError':
    case 'SecurityError':
      return new MicError('denied', 'Microphone access was blocked.');
    case 'NotFoundError':
    case 'DevicesNotFoundError':
    case 'OverconstrainedError':
      return new MicError('missing', 'No microphone was found.');
    case 'NotReadableError':
    case 'TrackStartError':
    case 'AbortError':
      return new MicError('busy', 'The microphone is in use by another application or could not start.');
    default:
      return new MicError('failed', `The microphone could not start (${(error && error.message) || error}).`);
  }
}

export class MicRecorder extends EventTarget {
  /**
   * @param {AudioContext} context created by the page after a user gesture
   * @param {{frameMs?: number, targetRate?: number}} [options]
   */
  constructor(context, { frameMs = 40, targetRate = 16000 } = {}) {
    super();
    this.context = context;
    this.frameMs = frameMs;
    this.targetRate = targetRate;
    this.stream = null;
    this.source = null;
    this.node = null;
  }

  async start() {
    if (!window.isSecureContext) {
      throw new MicError('insecure', 'Voice needs a secure (https) connection.');
    }
    if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia || !window.AudioWorkletNode) {
      throw new MicError('unsupported', 'This browser cannot capture audio for voice scenes.');
    }
    try {
      this.stream = await navigator.mediaDevices.getUserMedia({
        audio: {
          channelCount: 1,
          echoCancellation: true, // the partner's voice must not loop back into the scene
          noiseSuppression: true,
          autoGainControl: true,
        },
      });
    } catch (error) {
      throw micErrorFrom(error);
    }
    try {
      if (!loadedContexts.has(this.context)) {
        await this.context.audioWorklet.addModule(WORKLET_URL);
        loadedContexts.add(this.context);
      }
      this.source = this.context.createMediaStreamSource(this.stream);
      // No outputs: the node is a sink, so the browser pulls it without routing mic audio to the speakers.
      this.node = new AudioWorkletNode(this.context, 'pcm16-recorder', {
        numberOfInputs: 1,
        numberOfOutputs: 0,
        channelCount: 1,
        channelCountMode: 'explicit',
        processorOptions: { targetRate: this.targetRate, frameMs: this.frameMs },
      });
      this.node.port.onmessage = (event) => {
        if (event.data.type === 'frame') this.dispatchEvent(new CustomEvent('frame', { detail: event.data }));
      };
      this.source.connect(this.node);
    } catch (error) {
      this.stop();
      throw new MicError('failed', `Audio processing could not start (${error.message || error}).`);
    }
    const [track] = this.stream.getAudioTracks();
    if (track) {
      track.addEventListener('ended', () => this.dispatchEvent(new Event('ended')), { once: true });
    }
    return track ? track.label : '';
  }

  stop() {
    if (this.source) this.source.disconnect();
    if (this.node) {
      this.node.port.onmessage = null;
      this.node.disconnect();
    }
    if (this.stream) this.stream.getTracks().forEach((track) => track.stop());
    this.stream = null;
    this.source = null;
    this.node = null;
  }
}
