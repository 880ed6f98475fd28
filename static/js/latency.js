// The latency readout's clock: from the end of the player's line (speech fading on the mic,
// releasing push-to-talk, or sending a typed line) to the partner's first audible sound.
// The server's own figure (`turn_complete.latency_ms`) is kept beside it.

const SPEECH_RMS = 0.02; // a capture frame louder than this counts as the player speaking
const SPEECH_END_MS = 300; // this much quiet after speech marks the end of a line

export class LatencyClock {
  constructor() {
    this.speaking = false;
    this.lastVoiceAt = 0;
    this.waitingSince = null;
    this.page = [];
    this.server = [];
  }

  /** One capture frame; `heard` is false while push-to-talk is up (the server hears silence). */
  frame(rms, heard, now = performance.now()) {
    if (heard && rms > SPEECH_RMS) {
      this.speaking = true;
      this.lastVoiceAt = now;
    } else if (this.speaking && now - this.lastVoiceAt > SPEECH_END_MS) {
      this.speaking = false;
      this.waitingSince = this.lastVoiceAt;
    }
  }

  /** The line ended by an explicit act (push-to-talk released, typed line sent). */
  lineEnded(now = performance.now()) {
    this.speaking = false;
    this.waitingSince = now;
  }

  /** The partner became audible; returns true when that closed a measurement. */
  partnerAudible(now = performance.now()) {
    if (this.waitingSince === null) return false;
    this.page.push(now - this.waitingSince);
    this.waitingSince = null;
    return true;
  }

  serverMeasured(ms) {
    this.server.push(ms);
  }

  /** @returns {{lastMs: number, averageMs: number, detail: string} | null} */
  summary() {
    const mean = (list) => list.reduce((sum, value) => sum + value, 0) / list.length;
    const list = this.page.length ? this.page : this.server;
    if (!list.length) return null;
    const parts = [];
    if (this.page.length) parts.push(`heard here after ${Math.round(this.page.at(-1))} ms`);
    if (this.server.length) parts.push(`server measured ${Math.round(this.server.at(-1))} ms`);
    const detail = parts.join(' · ');
    return { lastMs: list.at(-1), averageMs: mean(list), detail: detail[0].toUpperCase() + detail.slice(1) };
  }
}
