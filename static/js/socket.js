// The voice socket: JSON + binary protocol of /ws/audio/<scene_id> (see audio/protocol.py), with
// automatic reconnect and scene resume. Events:
//   state   {state: 'connecting'|'live'|'reconnecting'|'ended', attempt, delayMs}
//   message {message}        every JSON frame except ping/pong
//   audio   {pcm}            24 kHz PCM16 from the partner
//   closed  {code, reason, error}   the socket will not come back by itself

export const CloseCode = Object.freeze({
  NORMAL: 1000,
  PROTOCOL_ERROR: 4000,
  UNAUTHENTICATED: 4001,
  FORBIDDEN: 4003,
  SCENE_UNAVAILABLE: 4004,
  IDLE_TIMEOUT: 4008,
  SUPERSEDED: 4009,
  DURATION_CAP: 4010,
  UPSTREAM_FAILURE: 4011,
  SERVER_RESTART: 4012,
  TOO_BIG: 4013,
  ROLLED_BACK: 4014,
  BUDGET_REACHED: 4015,
  LIMIT_EXCEEDED: 4029,
});

// Closes that mean "the connection broke, not the scene": come straight back and resume.
// 1006 is what a browser reports for a dropped network or a killed server (no close frame).
const RECONNECT_CODES = new Set([1001, 1005, 1006, 1011, 1012, 1013, 1014, 4008, 4012]);

export class StageSocket extends EventTarget {
  /**
   * @param {string} url ws(s) URL of /ws/audio/<scene_id>
   * @param {object} [options]
   */
  constructor(url, {
    maxAttempts = 10, baseDelayMs = 400, maxDelayMs = 8000, readyTimeoutMs = 12000,
    pingEveryMs = 15000, silenceLimitMs = 25000, maxBufferedBytes = 64 * 1024,
  } = {}) {
    super();
    this.url = url;
    this.options = { maxAttempts, baseDelayMs, maxDelayMs, readyTimeoutMs, pingEveryMs, silenceLimitMs, maxBufferedBytes };
    this.ws = null;
    this.state = 'idle';
    this.attempt = 0;
    this.resumeToken = '';
    this.retryAfterMs = null;
    this.lastError = null;
    this.lastHeardAt = 0;
    this.timers = { retry: 0, ready: 0, ping: 0 };
    this.ending = false;
    this.everLive = false;
    this.stats = { framesSent: 0, framesDropped: 0, reconnects: 0 };
    this.onOnline = () => { if (this.state === 'reconnecting') this.retryNow(); };
  }

  connect() {
    this.ending = false;
    window.addEventListener('online', this.onOnline);
    this.open();
  }

  open() {
    this.clearTimers();
    this.setState(this.attempt === 0 && !this.resumeToken ? 'connecting' : 'reconnecting');
    const url = new URL(this.url, window.location.href);
    if (this.resumeToken) url.searchParams.set('resume', this.resumeToken);
    const ws = new WebSocket(url);
    ws.binaryType = 'arraybuffer';
    this.ws = ws;
    ws.onmessage = (event) => this.onFrame(event);
    ws.onclose = (event) => this.onClose(event.code, event.reason);
    // Errors are always followed by a close event, which carries the decision.
    ws.onerror = () => {};
    this.timers.ready = window.setTimeout(() => this.drop('no ready message'), this.options.readyTimeoutMs);
  }

  onFrame(event) {
    this.lastHeardAt = performance.now();
    if (typeof event.data !== 'string') {
      this.dispatchEvent(new CustomEvent('audio', { detail: { pcm: event.data } }));
      return;
    }
    let message;
    try {
      message = JSON.parse(event.data);
    } catch {
      return; // not ours to crash on: the server only sends JSON text frames
    }
    switch (message.type) {
      case 'ping':
        this.sendJson({ type: 'pong', t: message.t ?? null });
        return;
      case 'pong':
        return;
      case 'ready':
        window.clearTimeout(this.timers.ready);
        // The session id is also its resume token: after a dropped network (no `reconnect`
        // message) the server can still pick the scene's Live session back up with it.
        if (message.session_id) this.resumeToken = String(message.session_id);
        // A reconnect is a `ready` after an earlier one: retries before the first `ready` (or the
        // token the first `ready` just set) are still the first connection.
        if (this.everLive) this.stats.reconnects += 1;
        this.everLive = true;
        this.attempt = 0;
        this.retryAfterMs = null;
        this.startKeepalive();
        this.setState('live');
        break;
      case 'reconnect':
        this.resumeToken = message.resume_token || this.resumeToken;
        this.retryAfterMs = Number.isFinite(message.retry_after_ms) ? message.retry_after_ms : 0;
        break;
      case 'error':
        this.lastError = message;
        break;
      default:
        break;
    }
    this.dispatchEvent(new CustomEvent('message', { detail: { message } }));
  }

  onClose(code, reason) {
    this.detach();
    if (this.ending || code === CloseCode.NORMAL) {
      this.finish(code, reason);
    } else if (RECONNECT_CODES.has(code)) {
      this.scheduleRetry();
    } else {
      this.finish(code, reason);
    }
  }

  scheduleRetry() {
    this.attempt += 1;
    if (this.attempt > this.options.maxAttempts) {
      this.finish(0, 'unreachable');
      return;
    }
    const backoff = Math.min(this.options.maxDelayMs, this.options.baseDelayMs * 2 ** (this.attempt - 1));
    // The server's hint wins once (a restart says when to come back); jitter spreads a herd of tabs.
    const delayMs = this.retryAfterMs ?? Math.round(backoff * (0.5 + Math.random() * 0.5));
    this.retryAfterMs = null;
    this.setState('reconnecting', { delayMs });
    this.timers.retry = window.setTimeout(() => this.open(), delayMs);
  }

  retryNow() {
    window.clearTimeout(this.timers.retry);
    this.open();
  }

  /** A connection that went quiet or never became ready: abandon it and reconnect. */
  drop(why) {
    if (!this.ws) return;
    const ws = this.ws;
    this.detach();
    try { ws.close(1000, why.slice(0, 100)); } catch { /* already closing */ }
    this.scheduleRetry();
  }

  startKeepalive() {
    window.clearInterval(this.timers.ping);
    this.timers.ping = window.setInterval(() => {
      if (performance.now() - this.lastHeardAt > this.options.silenceLimitMs) {
        this.drop('server went quiet');
        return;
      }
      this.sendJson({ type: 'ping', t: Date.now() });
    }, this.options.pingEveryMs);
  }

  sendJson(message) {
    if (this.ws && this.ws.readyState === WebSocket.OPEN) {
      this.ws.send(JSON.stringify(message));
      return true;
    }
    return false;
  }

  /** Send one PCM frame; stale audio is dropped rather than queued behind a slow link. */
  sendAudio(pcm) {
    if (this.state !== 'live' || !this.ws || this.ws.readyState !== WebSocket.OPEN) return false;
    if (this.ws.bufferedAmount > this.options.maxBufferedBytes) {
      this.stats.framesDropped += 1;
      return false;
    }
    this.ws.send(pcm);
    this.stats.framesSent += 1;
    return true;
  }

  /** End the voice session on purpose; resolves once the server has closed (or after a timeout). */
  end(timeoutMs = 2000) {
    this.ending = true;
    const ws = this.ws;
    if (!ws || ws.readyState !== WebSocket.OPEN) {
      this.detach();
      this.finish(CloseCode.NORMAL, 'ended');
      return Promise.resolve();
    }
    return new Promise((resolve) => {
      const done = () => resolve();
      this.addEventListener('closed', done, { once: true });
      this.sendJson({ type: 'end' });
      window.setTimeout(() => {
        if (this.ws === ws) {
          this.detach();
          try { ws.close(CloseCode.NORMAL, 'ended'); } catch { /* already closing */ }
          this.finish(CloseCode.NORMAL, 'ended');
        }
        resolve();
      }, timeoutMs);
    });
  }

  detach() {
    this.clearTimers();
    if (!this.ws) return;
    this.ws.onmessage = null;
    this.ws.onclose = null;
    this.ws.onerror = null;
    this.ws = null;
  }

  finish(code, reason) {
    this.clearTimers();
    window.removeEventListener('online', this.onOnline);
    this.setState('ended');
    this.dispatchEvent(new CustomEvent('closed', { detail: { code, reason, error: this.lastError } }));
  }

  clearTimers() {
    window.clearTimeout(this.timers.retry);
    window.clearTimeout(this.timers.ready);
    window.clearInterval(this.timers.ping);
  }

  setState(state, extra = {}) {
    this.state = state;
    this.dispatchEvent(new CustomEvent('state', { detail: { state, attempt: this.attempt, ...extra } }));
  }
}
