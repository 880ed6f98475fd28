// Per-browser preferences of the stage (push-to-talk, partner volume, microphone) in localStorage.
// Storage can be off (private modes, policies): a preference that is not kept is no error.

export const PREFERENCES = Object.freeze({
  pushToTalk: 'ai4joy.pushToTalk',
  partnerVolume: 'ai4joy.partnerVolume',
  microphone: 'ai4joy.microphone',
});

export function readPreference(key) {
  try { return window.localStorage.getItem(key); } catch { return null; }
}

export function writePreference(key, value) {
  try { window.localStorage.setItem(key, value); } catch { /* not kept */ }
}

/** A stored percentage, clamped to 0..100; `fallback` when missing or not a number. */
export function readPercent(key, fallback) {
  const number = Number.parseInt(readPreference(key), 10);
  return Number.isFinite(number) ? Math.max(0, Math.min(100, number)) : fallback;
}
