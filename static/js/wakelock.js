// Keep the screen on while voice is live: a phone that locks mid-scene ends the scene's audio.
// Degrades quietly: where the Screen Wake Lock API is missing or refused, voice works as before.
// States (for the page and the tests): off | held | released | unsupported | denied.

export class ScreenWakeLock {
  constructor() {
    this.sentinel = null;
    this.wanted = false;
    this.state = 'wakeLock' in navigator ? 'off' : 'unsupported';
    // The browser drops the lock whenever the tab is hidden; take it again when the player is back.
    this.onVisible = () => {
      if (this.wanted && document.visibilityState === 'visible' && !this.sentinel) this.request();
    };
  }

  async acquire() {
    if (this.wanted) return;
    this.wanted = true;
    document.addEventListener('visibilitychange', this.onVisible);
    await this.request();
  }

  async request() {
    if (this.state === 'unsupported') return;
    try {
      const sentinel = await navigator.wakeLock.request('screen');
      if (!this.wanted) { // voice ended while the request was pending
        await sentinel.release();
        return;
      }
      this.sentinel = sentinel;
      this.state = 'held';
      sentinel.addEventListener('release', () => {
        if (this.sentinel === sentinel) this.sentinel = null;
        if (this.state === 'held') this.state = 'released';
      }, { once: true });
    } catch {
      // NotAllowedError: a policy, battery saver or a hidden tab. Not worth a notice.
      this.state = 'denied';
    }
  }

  async release() {
    this.wanted = false;
    document.removeEventListener('visibilitychange', this.onVisible);
    const sentinel = this.sentinel;
    this.sentinel = null;
    if (this.state === 'held') this.state = 'released';
    if (sentinel) await sentinel.release().catch(() => {});
  }
}
