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

async function openStream(deviceId) {
  try {
    return await navigator.mediaDevices.getUserMedia({
      audio: {
        ...(deviceId ? { deviceId } : {}),
        channelCount: 1,
        echoCancellation: true, // the partner's voice must not loop back into the scene
        noiseSuppression: true,
        autoGainControl: true,
      },
    });
  } catch (error) {
    throw micErrorFrom(error);
  }
}

/** @returns {Promise<{deviceId: string, label: string}[]>} microphones (labels once permission is given) */
export async function listMicrophones() {
  if (!navigator.mediaDevices || !navigator.mediaDevices.enumerateDevices) return [];
  const devices = await navigator.mediaDevices.enumerateDevices();
  return devices
    .filter((device) => device.kind === 'audioinput' && device.deviceId)
    .map((device, index) => ({ deviceId: device.deviceId, label: device.label || `Microphone ${index + 1}` }));
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
    this.watched = null;
    this.onTrackEnded = null;
  }

  /**
   * @param {{deviceId?: string}} [options] a remembered microphone: preferred, not required, so a
   *   headset that is unplugged today falls back to the default one instead of failing. (Asked
   *   for exactly, then without: Chromium does not always honour an `ideal` deviceId.)
   * @returns {Promise<string>} the microphone's label
   */
  async start({ deviceId = '' } = {}) {
    if (!window.isSecureContext) {
      throw new MicError('insecure', 'Voice needs a secure (https) connection.');
    }
    if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia || !window.AudioWorkletNode) {
      throw new MicError('unsupported', 'This browser cannot capture audio for voice scenes.');
    }
    this.stream = null;
    if (deviceId) {
      try {
        this.stream = await openStream({ exact: deviceId });
      } catch (error) {
        if (error.kind !== 'missing') throw error;
      }
    }
    if (!this.stream) this.stream = await openStream(undefined);
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
    this.watchTrack();
    return this.label;
  }

  /** The microphone in use: its label and device id (as enumerateDevices lists it). */
  get track() { return this.stream ? this.stream.getAudioTracks()[0] || null : null; }

  get label() { return this.track ? this.track.label : ''; }

  get deviceId() { return this.track ? this.track.getSettings().deviceId || '' : ''; }

  /**
   * Change microphones mid-scene: the new stream feeds the same worklet, so the frames (and the
   * socket they go to) never stop. On failure the old microphone stays on.
   * @returns {Promise<string>} the new microphone's label
   */
  async switchDevice(deviceId) {
    if (!this.node) throw new MicError('failed', 'The microphone is not running.');
    const stream = await openStream({ exact: deviceId });
    const source = this.context.createMediaStreamSource(stream);
    source.connect(this.node);
    const [oldStream, oldSource] = [this.stream, this.source];
    this.unwatchTrack();
    this.stream = stream;
    this.source = source;
    if (oldSource) oldSource.disconnect();
    if (oldStream) oldStream.getTracks().forEach((track) => track.stop());
    this.watchTrack();
    return this.label;
  }

  watchTrack() {
    const track = this.track;
    if (!track) return;
    this.watched = track;
    this.onTrackEnded = () => this.dispatchEvent(new Event('ended'));
    track.addEventListener('ended', this.onTrackEnded, { once: true });
  }

  unwatchTrack() {
    if (this.watched && this.onTrackEnded) this.watched.removeEventListener('ended', this.onTrackEnded);
    this.watched = null;
  }

  stop() {
    this.unwatchTrack();
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
