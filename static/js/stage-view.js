// DOM rendering for the voice panel: captions, room, coach notes, meter, latency, notices.
// No protocol or audio logic here; stage.js decides, this file draws.

// Mood -> hue of the stage's glow (warm for fun, cool for quiet, red for tension).
const MOOD_HUES = {
  playful: 32, electric: 48, tender: 330, absurd: 280, tense: 0, giddy: 300, warm: 28, curious: 190,
  chaotic: 260, wistful: 220, bored: 230, delighted: 40, excited: 40, quiet: 210, engaged: 160,
};
const ROLE_NAMES = { user: 'You', partner: 'Partner' };
const STATE_LABELS = {
  idle: 'Voice is off',
  starting: 'Waiting for the microphone…',
  connecting: 'Connecting…',
  live: 'Live',
  reconnecting: 'Reconnecting…',
  ended: 'Voice ended',
};

/** Moods the model invents still get their own, stable colour. */
function hashHue(word) {
  let hash = 0;
  for (const char of word) hash = (hash * 31 + char.codePointAt(0)) % 360;
  return hash;
}

/** Energy and engagement may come as 0–1, 0–10 or 0–100; show them all on 0–1. */
function unit(value) {
  const number = Number(value);
  if (!Number.isFinite(number) || number <= 0) return 0;
  if (number <= 1) return number;
  return Math.min(1, number <= 10 ? number / 10 : number / 100);
}

export class VoiceView {
  constructor(panel) {
    this.panel = panel;
    const $ = (selector) => panel.querySelector(selector);
    this.el = {
      connLabel: $('[data-conn-label]'), notice: $('[data-notice]'), noticeTitle: $('[data-notice-title]'),
      noticeBody: $('[data-notice-body]'), noticeSteps: $('[data-notice-steps]'), noticeActions: $('[data-notice-actions]'),
      start: $('[data-action="start"]'), startLabel: $('[data-start-label]'), toText: $('[data-action="to-text"]'),
      pttToggle: $('[data-ptt-toggle]'), talk: $('[data-action="talk"]'), talkHelp: $('[data-talk-help]'),
      level: $('[data-level]'), levelBar: $('[data-level-bar]'), micName: $('[data-mic-name]'),
      latency: $('[data-latency]'), latencyDetail: $('[data-latency-detail]'), room: $('[data-room]'),
      moodLabel: $('[data-mood-label]'), energy: $('[data-energy]'),
      engagement: $('[data-engagement]'), transcript: $('[data-transcript]'), coach: $('[data-coach]'),
      textForm: $('[data-voice-text]'), mute: $('[data-action="mute"]'), settings: $('[data-voice-settings]'),
      volume: $('[data-volume]'), micSelect: $('[data-mic-select]'), levelMuted: $('[data-level-muted]'),
    };
    this.muted = false;
    this.state = 'idle';
    this.stateExtra = {};
    this.open = { user: null, partner: null };
    // A line we closed early (barge-in, reconnect): the server's final text for it lands here.
    this.closedEarly = { user: null, partner: null };
    this.shownLevel = -1;
  }

  setState(state, { attempt = 0, delayMs = 0 } = {}) {
    this.state = state;
    this.stateExtra = { attempt, delayMs };
    this.panel.dataset.state = state;
    let label = STATE_LABELS[state] || state;
    if (state === 'reconnecting' && attempt > 0) {
      label = `Reconnecting… (try ${attempt}${delayMs ? `, in ${(delayMs / 1000).toFixed(1)} s` : ''})`;
    }
    const active = ['starting', 'connecting', 'live', 'reconnecting'].includes(state);
    if (this.muted && active) label = `${label} · Muted`;
    this.el.connLabel.textContent = label;
    this.el.start.hidden = active;
    this.el.toText.hidden = !active;
    this.el.mute.hidden = !active;
    this.el.settings.hidden = !active;
    this.el.textForm.hidden = state !== 'live';
    this.el.talk.disabled = state !== 'live';
  }

  /** Muted: the toggle is pressed, the state pill and the level meter both say "Muted". */
  setMuted(muted) {
    this.muted = muted;
    this.panel.dataset.muted = String(muted);
    this.el.mute.setAttribute('aria-pressed', String(muted));
    this.el.levelMuted.hidden = !muted;
    this.el.levelBar.hidden = muted;
    if (muted) {
      this.setLevel(0);
      this.el.level.setAttribute('aria-valuetext', 'Muted');
    } else {
      this.el.level.removeAttribute('aria-valuetext');
    }
    this.setState(this.state, this.stateExtra);
  }

  /** @param {number} percent 0..100 */
  showVolume(percent) {
    this.el.volume.value = String(percent);
    this.el.volume.setAttribute('aria-valuetext', `${percent}%`);
  }

  /**
   * @param {{deviceId: string, label: string}[]} microphones
   * @param {string} currentId the device in use
   */
  showMicrophones(microphones, currentId) {
    const select = this.el.micSelect;
    const options = microphones.map(({ deviceId, label }) => Object.assign(document.createElement('option'), { value: deviceId, textContent: label }));
    if (options.length === 0) options.push(Object.assign(document.createElement('option'), { value: '', textContent: 'Default microphone' }));
    select.replaceChildren(...options);
    if (microphones.some((mic) => mic.deviceId === currentId)) select.value = currentId;
    // One microphone leaves nothing to choose, but the control still says which one is on.
    select.disabled = microphones.length < 2;
  }

  setStartLabel(text) { this.el.startLabel.textContent = text; }

  setPushToTalk(enabled) {
    this.el.pttToggle.checked = enabled;
    this.el.talk.hidden = !enabled;
    this.el.talkHelp.hidden = !enabled;
  }

  setTalking(talking) {
    this.el.talk.setAttribute('aria-pressed', String(talking));
    this.el.talk.textContent = talking ? 'Talking… release to stop' : 'Hold to talk';
  }

  /**
   * @param {{title: string, body: string, steps?: string[]}} notice
   * @param {{label: string, onClick?: Function, href?: string, primary?: boolean}[]} actions
   */
  showNotice({ title, body, steps }, actions = [], tone = 'alert') {
    const { notice } = this.el;
    notice.hidden = false;
    notice.dataset.tone = tone;
    notice.setAttribute('role', tone === 'alert' ? 'alert' : 'status');
    this.el.noticeTitle.textContent = title;
    this.el.noticeBody.textContent = body;
    this.el.noticeSteps.replaceChildren(...(steps || []).map((step) => Object.assign(document.createElement('li'), { textContent: step })));
    this.el.noticeSteps.hidden = !steps || steps.length === 0;
    this.el.noticeActions.replaceChildren(...actions.map((action) => {
      const node = document.createElement(action.href ? 'a' : 'button');
      node.className = `button small${action.primary ? '' : ' secondary'}`;
      node.textContent = action.label;
      if (action.href) node.href = action.href;
      else {
        node.type = 'button';
        node.addEventListener('click', action.onClick);
      }
      return node;
    }));
  }

  hideNotice() { this.el.notice.hidden = true; }

  focusNotice() { this.el.notice.focus(); }

  setMicName(text) { this.el.micName.textContent = text; }

  /** @param {number} rms 0..1 of the last capture frame */
  setLevel(rms) {
    if (this.muted) rms = 0;
    // Decibel scale: -60 dBFS is empty, 0 dBFS is full; speech sits around the middle.
    const db = rms > 0 ? 20 * Math.log10(rms) : -100;
    const level = Math.round(Math.max(0, Math.min(1, (db + 60) / 60)) * 100);
    if (level === this.shownLevel) return;
    this.shownLevel = level;
    this.el.levelBar.style.width = `${level}%`;
    this.el.level.setAttribute('aria-valuenow', String(level));
    this.el.level.dataset.hot = String(level > 40);
  }

  clearEmpty(list) {
    const placeholder = list.querySelector('[data-empty]');
    if (placeholder) placeholder.remove();
  }

  /** A transcript message: a running caption until `final`. Text may be a delta or the whole line so far. */
  caption(role, text, final) {
    const list = this.el.transcript;
    this.clearEmpty(list);
    let line = this.open[role];
    if (!line && final && this.closedEarly[role]) line = this.closedEarly[role];
    this.closedEarly[role] = null;
    if (!line) {
      line = document.createElement('li');
      line.className = `vp-line ${role}`;
      line.dataset.role = role;
      const who = Object.assign(document.createElement('span'), { className: 'vp-who', textContent: `${ROLE_NAMES[role] || role}: ` });
      const said = Object.assign(document.createElement('span'), { className: 'vp-said' });
      line.append(who, said);
      list.append(line);
      this.open[role] = line;
    }
    const said = line.querySelector('.vp-said');
    const current = said.textContent;
    const incoming = text || '';
    if (incoming.startsWith(current)) said.textContent = incoming;
    else if (!current.endsWith(incoming)) said.textContent = `${current}${current && !/^[\s,.!?;:]/.test(incoming) && !current.endsWith(' ') ? ' ' : ''}${incoming}`;
    line.classList.toggle('partial', !final && !line.classList.contains('interrupted'));
    this.open[role] = final ? null : line;
    // Screen readers hear a line once it is complete, not every word of it.
    list.setAttribute('aria-busy', String(Boolean(this.open.user || this.open.partner)));
    list.scrollTop = list.scrollHeight;
  }

  /** Barge-in: the partner's running line stops where it was cut off. */
  cutPartner() {
    const line = this.open.partner;
    if (!line) return;
    line.classList.remove('partial');
    line.classList.add('interrupted');
    this.open.partner = null;
    this.closedEarly.partner = line;
    this.el.transcript.setAttribute('aria-busy', String(Boolean(this.open.user)));
  }

  /** Close any running captions (end of a turn). */
  settle(role) {
    const line = this.open[role];
    if (!line) return;
    line.classList.remove('partial');
    this.open[role] = null;
    this.closedEarly[role] = line;
    this.el.transcript.setAttribute('aria-busy', String(Boolean(this.open.user || this.open.partner)));
  }

  systemLine(text) {
    const list = this.el.transcript;
    this.clearEmpty(list);
    list.append(Object.assign(document.createElement('li'), { className: 'vp-line system', textContent: text }));
    list.scrollTop = list.scrollHeight;
  }

  room({ energy, engagement, mood }) {
    const name = String(mood || '').toLowerCase().trim();
    const hue = name ? MOOD_HUES[name] ?? hashHue(name) : 265;
    this.el.room.dataset.mood = name;
    this.el.moodLabel.textContent = name ? name[0].toUpperCase() + name.slice(1) : 'Warming up';
    this.el.energy.value = unit(energy);
    this.el.engagement.value = unit(engagement);
    // The whole stage glows in the room's mood; energy makes the glow stronger.
    const stage = this.panel.closest('[data-scene-id]') || this.panel;
    stage.style.setProperty('--mood-hue', String(hue));
    stage.style.setProperty('--mood-strength', String(0.25 + unit(energy) * 0.5));
    // Keep the page's own room card (server-rendered in text mode) in step with the voice scene.
    const card = [...stage.querySelectorAll('[data-room-card], [data-room]')].find((node) => !this.panel.contains(node));
    let pageMood = stage.querySelector('[data-room-mood]');
    const placeholder = card && card.querySelector('p.muted');
    if (!pageMood && placeholder && name) {
      // The card still shows its "before the scene" text: give it the mood line it has later.
      pageMood = Object.assign(document.createElement('strong'), { textContent: name });
      pageMood.dataset.roomMood = '';
      placeholder.className = 'mood';
      placeholder.replaceChildren('The audience is ', pageMood);
    }
    if (pageMood && name) pageMood.textContent = name;
    for (const [selector, value] of [['[data-room-energy]', energy], ['[data-room-engagement]', engagement]]) {
      const meter = stage.querySelector(selector);
      if (meter) meter.value = Number(meter.max || 1) * unit(value);
    }
  }

  coach(text) {
    this.clearEmpty(this.el.coach);
    this.el.coach.append(Object.assign(document.createElement('li'), { textContent: text }));
  }

  latency(lastMs, averageMs, source) {
    this.el.latency.textContent = `${Math.round(lastMs)} ms`;
    this.el.latencyDetail.textContent = `${source}; average ${Math.round(averageMs)} ms over your turns.`;
  }
}
