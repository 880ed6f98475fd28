// Page glue for the stage: voice mode (mic -> socket -> player) layered over the text-mode page.
// Text mode needs no JavaScript (plain POST forms); this file only adds voice and switches the
// page between the two without dead buttons.

import { MicError, MicRecorder, microphonePermission } from './recorder.js';
import { PcmPlayer } from './player.js';
import { StageSocket } from './socket.js';
import { VoiceView } from './stage-view.js';
import { closeGuidance, micGuidance } from './guidance.js';
import { LatencyClock } from './latency.js';
import { StageControls } from './controls.js';
import { PREFERENCES, readPreference, writePreference } from './preferences.js';

const TEXT_CONTROLS = '[data-say-form], [data-text-mode]';

function socketUrl(raw) {
  const url = new URL(raw, window.location.href);
  if (url.protocol === 'http:') url.protocol = 'ws:';
  if (url.protocol === 'https:') url.protocol = 'wss:';
  return url.toString();
}

class VoiceStage {
  constructor(root, panel) {
    this.root = root;
    this.view = new VoiceView(panel);
    this.wsUrl = socketUrl(root.dataset.wsUrl);
    this.context = null;
    this.recorder = null;
    this.player = null;
    this.socket = null;
    this.pushToTalk = readPreference(PREFERENCES.pushToTalk) === '1';
    this.talking = false;
    this.latency = new LatencyClock();
    this.stats = { state: 'idle', micRms: 0, micFrames: 0, interrupts: 0, transcripts: { user: 0, partner: 0 }, rooms: 0, coach: 0 };
    this.levelQueued = false;
    this.lastPlayerStats = null;
    this.controls = new StageControls(this.view, {
      audio: () => ({ recorder: this.recorder, player: this.player }),
      onMute: (muted) => {
        if (!muted) return;
        this.setTalking(false);
        this.latency.lineEnded();
      },
    });
  }

  init() {
    const { el } = this.view;
    el.start.addEventListener('click', () => this.start());
    el.toText.addEventListener('click', () => this.toText());
    el.pttToggle.addEventListener('change', () => this.setPushToTalk(el.pttToggle.checked));
    this.controls.init();
    this.bindTalkButton(el.talk);
    el.textForm.addEventListener('submit', (event) => this.sendTyped(event));
    for (const form of this.root.querySelectorAll('form[data-end-scene], form.end-form')) {
      form.addEventListener('submit', (event) => this.endSceneThen(event, form));
    }
    this.view.setPushToTalk(this.pushToTalk);
    el.pttToggle.closest('label').hidden = false;
    this.view.setStartLabel(this.root.dataset.mode === 'text' ? 'Switch to voice' : 'Start voice');
    this.view.setState('idle');
    this.setTextMode(true);
    this.placePanel();
    this.warnIfBlocked();
  }

  /** Voice players get the panel right under the scene's title (moved in the DOM, so the focus
   * order matches what they see); without JavaScript it stays at the bottom with its notice. */
  placePanel() {
    const slot = this.view.panel.closest('[data-voice-slot]') || this.view.panel;
    const head = this.root.querySelector('.stage-head');
    if (head && head.nextElementSibling !== slot) head.after(slot);
  }

  async warnIfBlocked() {
    // On page load: say so, but leave the focus where the page put it.
    if (await microphonePermission() === 'denied') this.showMicGuidance(new MicError('denied', 'blocked'), false);
  }

  async start() {
    if (this.socket || this.context) return;
    this.view.hideNotice();
    this.view.setState('starting');
    try {
      // Created inside the click handler: browsers only let a user gesture start audio.
      this.context = new AudioContext({ latencyHint: 'interactive' });
      await this.context.resume();
      this.player = new PcmPlayer(this.context);
      await this.player.start();
      this.player.addEventListener('started', () => this.partnerAudible());
      this.recorder = new MicRecorder(this.context, { frameMs: 40 });
      this.recorder.addEventListener('frame', (event) => this.onFrame(event.detail));
      this.recorder.addEventListener('ended', () => this.onMicLost());
      const label = await this.recorder.start({ deviceId: this.controls.preferredMicrophone() });
      this.view.setMicName(label || 'Microphone on');
    } catch (error) {
      this.teardownAudio();
      this.view.setState('idle');
      this.showMicGuidance(error instanceof MicError ? error : new MicError('failed', String(error.message || error)));
      return;
    }
    this.view.panel.dataset.used = 'true';
    this.setTextMode(false);
    this.controls.started();
    this.openSocket();
  }

  openSocket() {
    const socket = new StageSocket(this.wsUrl);
    this.socket = socket;
    // Events of a socket we already let go of (switch to typing, end scene) are not news.
    const mine = (handler) => (event) => { if (this.socket === socket) handler(event.detail); };
    socket.addEventListener('state', mine((detail) => this.onSocketState(detail)));
    socket.addEventListener('message', mine((detail) => this.onMessage(detail.message)));
    socket.addEventListener('audio', mine((detail) => this.player && this.player.enqueue(detail.pcm)));
    socket.addEventListener('closed', mine((detail) => this.onClosed(detail)));
    socket.connect();
  }

  onSocketState({ state, attempt, delayMs }) {
    const previous = this.stats.state;
    this.stats.state = state;
    if (state === 'ended') return; // onClosed decides what the panel shows
    this.view.setState(state, { attempt, delayMs });
    if (state === 'live') this.controls.live();
    if (state === 'reconnecting' && previous !== 'reconnecting') {
      // The turn in flight died with the connection: cut its captions and its queued audio.
      if (this.player) this.player.interrupt();
      this.view.cutPartner();
      this.view.settle('user');
      this.view.showNotice({ title: 'Connection lost — reconnecting', body: 'Hold that thought: the scene resumes where you left it as soon as we are back.' }, [], 'status');
    }
  }

  onMessage(message) {
    switch (message.type) {
      case 'ready':
        this.view.hideNotice();
        if (message.resumed) this.view.systemLine('Reconnected — the scene carries on.');
        else if (this.socket && this.socket.stats.reconnects > 0) {
          this.view.systemLine('Reconnected — your partner picks the scene up again from what was saved.');
        }
        break;
      case 'transcript':
        if (message.role !== 'user' && message.role !== 'partner') break;
        this.stats.transcripts[message.role] += 1;
        this.view.caption(message.role, String(message.text || ''), Boolean(message.final));
        break;
      case 'interrupted':
        this.stats.interrupts += 1;
        if (this.player) this.player.interrupt();
        this.view.cutPartner();
        break;
      case 'turn_complete':
        if (this.player) this.player.endOfTurn();
        this.view.settle('partner');
        if (Number.isFinite(message.latency_ms)) {
          this.latency.serverMeasured(message.latency_ms);
          this.showLatency();
        }
        break;
      case 'room':
        this.stats.rooms += 1;
        this.view.room(message);
        break;
      case 'coach':
        if (message.text) {
          this.stats.coach += 1;
          this.view.coach(String(message.text));
        }
        break;
      case 'saving':
        // Sent only when saving has failed for a while (the store is down); lines are kept meanwhile.
        this.view.showNotice(message.delayed ? {
          title: 'Saving is delayed',
          body: `Your last ${message.pending} line(s) are kept and will be saved as soon as our database is back. Keep playing.`,
        } : {
          title: 'Scene saved',
          body: 'Everything you said has been saved.',
        }, [], 'status');
        break;
      case 'warning':
        this.view.showNotice({
          title: 'Voice session ending soon',
          body: `This voice session reaches its time limit in about ${message.seconds_left} s. Your scene is saved: start voice again to continue.`,
        }, [], 'status');
        break;
      case 'error':
        this.view.systemLine(`Server: ${message.message || message.code}`);
        break;
      default:
        break;
    }
  }

  onFrame({ pcm, rms }) {
    this.stats.micRms = rms;
    this.stats.micFrames += 1;
    this.queueLevel(rms);
    const { muted } = this.controls;
    const open = !muted && (!this.pushToTalk || this.talking);
    this.latency.frame(rms, open);
    // Muted means nothing leaves the browser, not even silence.
    if (!this.socket || muted) return;
    // Push-to-talk sends silence while the button is up, so the server's stream (and its own
    // end-of-speech detection) keeps going but hears nothing from the room.
    this.socket.sendAudio(open ? pcm : new ArrayBuffer(pcm.byteLength));
  }

  queueLevel(rms) {
    this.pendingLevel = rms;
    if (this.levelQueued) return;
    this.levelQueued = true;
    window.requestAnimationFrame(() => {
      this.levelQueued = false;
      this.view.setLevel(this.recorder ? this.pendingLevel : 0);
    });
  }

  partnerAudible() {
    if (this.latency.partnerAudible()) this.showLatency();
  }

  showLatency() {
    const summary = this.latency.summary();
    if (summary) this.view.latency(summary.lastMs, summary.averageMs, summary.detail);
  }

  bindTalkButton(button) {
    const down = (event) => {
      if (event.type === 'keydown' && (event.repeat || (event.key !== ' ' && event.key !== 'Enter'))) return;
      event.preventDefault();
      this.setTalking(true);
    };
    const up = (event) => {
      if (event.type === 'keyup' && event.key !== ' ' && event.key !== 'Enter') return;
      this.setTalking(false);
    };
    button.addEventListener('pointerdown', down);
    button.addEventListener('keydown', down);
    for (const type of ['pointerup', 'pointerleave', 'pointercancel', 'keyup', 'blur']) button.addEventListener(type, up);
  }

  setTalking(talking) {
    const live = Boolean(this.socket && this.socket.state === 'live');
    if (talking === this.talking || (talking && (!live || this.controls.muted))) return;
    this.talking = talking;
    this.view.setTalking(talking);
    if (live) this.socket.sendJson({ type: talking ? 'activity_start' : 'activity_end' });
    if (!talking) this.latency.lineEnded();
  }

  setPushToTalk(enabled) {
    if (!enabled) this.setTalking(false);
    this.pushToTalk = enabled;
    writePreference(PREFERENCES.pushToTalk, enabled ? '1' : '0');
    this.view.setPushToTalk(enabled);
  }

  sendTyped(event) {
    event.preventDefault();
    const input = event.target.elements.text;
    const text = input.value.trim();
    if (!text || !this.socket || !this.socket.sendJson({ type: 'text', text })) return;
    // Shown as a running line: the server's final transcript of the turn replaces it.
    this.view.caption('user', text, false);
    this.latency.lineEnded();
    input.value = '';
  }

  onMicLost() {
    this.stopVoice();
    this.showMicGuidance(new MicError('missing', 'The microphone was disconnected.'));
  }

  onClosed({ code, error }) {
    this.socket = null;
    this.teardownAudio();
    const guidance = closeGuidance(code, error && error.message);
    this.view.setState('ended');
    this.setTextMode(true);
    if (!guidance) {
      this.view.hideNotice();
      this.view.setStartLabel('Start voice again');
      this.view.systemLine('Voice ended. Type below, or start voice again.');
      return;
    }
    this.offer(guidance, 'Try voice again');
  }

  /** Show guidance; the big start button is the one retry (hidden when retrying cannot help). */
  offer(guidance, retryLabel, focus = true) {
    const canRetry = guidance.next.includes('retry');
    const actions = guidance.next.filter((next) => next !== 'retry').map((next) => this.actionFor(next));
    this.view.showNotice(guidance, actions);
    this.view.setStartLabel(guidance.retryLabel || retryLabel);
    if (guidance.auto) this.toText({ keepNotice: true, allowVoice: canRetry });
    else this.view.el.start.hidden = !canRetry;
    if (focus) this.view.focusNotice();
  }

  actionFor(next) {
    const here = encodeURIComponent(window.location.pathname);
    switch (next) {
      case 'text': return { label: 'Continue by typing', onClick: () => this.toText() };
      case 'sign-in': return { label: 'Sign in again', primary: true, href: `/accounts/login/?next=${here}` };
      case 'new-scene': return { label: 'Start a new scene', primary: true, href: '/' };
      default: return { label: next, onClick: () => {} };
    }
  }

  showMicGuidance(error, focus = true) {
    this.offer(micGuidance(error), 'Try the microphone again', focus);
  }

  /** Show or hide the page's text-mode controls (the say form), so only one input path is live. */
  setTextMode(on) {
    this.root.dataset.activeMode = on ? 'text' : 'voice';
    for (const node of this.root.querySelectorAll(TEXT_CONTROLS)) node.hidden = !on;
  }

  async toText({ keepNotice = false, allowVoice = true } = {}) {
    await this.stopVoice();
    if (!keepNotice) {
      this.view.hideNotice();
      this.view.setStartLabel('Switch to voice');
    }
    this.view.setState('idle');
    // No button that can only fail again (voice switched off, unsupported browser).
    this.view.el.start.hidden = !allowVoice;
    this.setTextMode(true);
    const field = this.root.querySelector('[data-say-form] textarea, [data-text-mode] textarea, [data-text-mode] input[type="text"]');
    if (field) field.focus();
  }

  async stopVoice() {
    const socket = this.socket;
    this.socket = null;
    if (socket) await socket.end();
    this.teardownAudio();
  }

  async endSceneThen(event, form) {
    if (!this.socket) return;
    event.preventDefault();
    await this.stopVoice();
    form.submit();
  }

  teardownAudio() {
    this.setTalking(false);
    this.controls.stopped();
    if (this.recorder) this.recorder.stop();
    if (this.player) {
      this.lastPlayerStats = { ...this.player.stats };
      this.player.stop();
    }
    if (this.context) this.context.close().catch(() => {});
    this.recorder = null;
    this.player = null;
    this.context = null;
    this.view.setLevel(0);
    this.view.setMicName('Microphone off');
  }

  /** Numbers for the e2e tests and for anyone debugging audio in the console. */
  snapshot() {
    const socketStats = this.socket ? this.socket.stats : {};
    return {
      ...this.stats,
      transcripts: { ...this.stats.transcripts },
      socketState: this.socket ? this.socket.state : 'none',
      framesSent: socketStats.framesSent || 0,
      reconnects: socketStats.reconnects || 0,
      player: this.player ? { ...this.player.stats } : this.lastPlayerStats || null,
      latencies: { page: [...this.latency.page], server: [...this.latency.server] },
      ...this.controls.snapshot(),
    };
  }
}

const root = document.querySelector('[data-scene-id][data-ws-url]');
const panel = document.querySelector('[data-voice-panel]');
if (root && panel) {
  const stage = new VoiceStage(root, panel);
  stage.init();
  window.ai4joyVoice = { snapshot: () => stage.snapshot() };
}
