// The voice stage's player controls: mute, partner volume, microphone picker and the screen wake
// lock. They own their state and preferences; stage.js tells them when audio starts, goes live
// and stops, and asks `muted` before it sends a frame.

import { MicError, listMicrophones } from './recorder.js';
import { micGuidance } from './guidance.js';
import { PREFERENCES, readPercent, readPreference, writePreference } from './preferences.js';
import { ScreenWakeLock } from './wakelock.js';

export class StageControls {
  /**
   * @param {import('./stage-view.js').VoiceView} view
   * @param {{audio: () => {recorder: ?import('./recorder.js').MicRecorder, player: ?import('./player.js').PcmPlayer},
   *          onMute: (muted: boolean) => void}} stage
   */
  constructor(view, { audio, onMute }) {
    this.view = view;
    this.audio = audio;
    this.onMute = onMute;
    this.muted = false;
    this.volume = readPercent(PREFERENCES.partnerVolume, 100);
    this.micSwitches = 0;
    this.wakeLock = new ScreenWakeLock();
    this.onDeviceChange = () => this.refreshMicrophones();
  }

  init() {
    const { el } = this.view;
    el.mute.addEventListener('click', () => this.setMuted(!this.muted));
    el.volume.addEventListener('input', () => this.setVolume(el.volume.value));
    el.micSelect.addEventListener('change', () => this.chooseMicrophone(el.micSelect.value));
    this.view.showVolume(this.volume);
  }

  /** The microphone to ask for first (the recorder falls back to the default one). */
  preferredMicrophone() {
    return readPreference(PREFERENCES.microphone) || '';
  }

  /** Audio is running: apply the volume, list the microphones, follow plugging and unplugging. */
  started() {
    const { player } = this.audio();
    if (player) player.setVolume(this.volume / 100);
    this.refreshMicrophones();
    navigator.mediaDevices?.addEventListener?.('devicechange', this.onDeviceChange);
  }

  live() {
    this.wakeLock.acquire();
  }

  stopped() {
    this.wakeLock.release();
    navigator.mediaDevices?.removeEventListener?.('devicechange', this.onDeviceChange);
    this.setMuted(false);
  }

  /** Mute: frames are still captured (so unmuting is instant) but the stage sends none. */
  setMuted(muted) {
    if (muted === this.muted) return;
    this.muted = muted;
    this.view.setMuted(muted);
    this.onMute(muted);
  }

  setVolume(raw) {
    const number = Number.parseInt(raw, 10);
    if (Number.isFinite(number)) this.volume = Math.max(0, Math.min(100, number));
    writePreference(PREFERENCES.partnerVolume, String(this.volume));
    this.view.showVolume(this.volume);
    const { player } = this.audio();
    if (player) player.setVolume(this.volume / 100);
  }

  async refreshMicrophones() {
    const { recorder } = this.audio();
    if (!recorder) return;
    try {
      this.view.showMicrophones(await listMicrophones(), recorder.deviceId);
    } catch {
      // enumerateDevices can be blocked by a policy: the default microphone simply stays on.
    }
  }

  /** Switch microphones without ending the scene: the socket, the player and the line go on. */
  async chooseMicrophone(deviceId) {
    const { recorder } = this.audio();
    if (!recorder || !deviceId || deviceId === recorder.deviceId) return;
    try {
      const label = await recorder.switchDevice(deviceId);
      writePreference(PREFERENCES.microphone, recorder.deviceId || deviceId);
      this.view.setMicName(label || 'Microphone on');
      this.micSwitches += 1;
    } catch (error) {
      const guidance = micGuidance(error instanceof MicError ? error : new MicError('failed', String(error.message || error)));
      this.view.showNotice({ ...guidance, title: `${guidance.title} — still using the previous microphone` }, [], 'alert');
    }
    this.refreshMicrophones();
  }

  snapshot() {
    const { recorder, player } = this.audio();
    return {
      muted: this.muted,
      volume: this.volume,
      partnerGain: player && player.gain ? player.gain.gain.value : null,
      micDeviceId: recorder ? recorder.deviceId : '',
      micLabel: recorder ? recorder.label : '',
      micSwitches: this.micSwitches,
      wakeLock: this.wakeLock.state,
    };
  }
}
