// What to tell the player when voice cannot go on, and what to offer next.
// Each entry: title, body, optional steps, `next`: 'text' (carry on typing), 'retry' (offer to
// start voice again), 'sign-in', 'new-scene'; `auto` switches to text mode straight away.

import { CloseCode } from './socket.js';

const UNBLOCK_STEPS = [
  'Click the lock or settings icon at the left of the address bar.',
  'Set “Microphone” to “Allow” for this site.',
  'Choose “Try again” below (or reload the page).',
];

/** @param {import('./recorder.js').MicError} error */
export function micGuidance(error) {
  switch (error.kind) {
    case 'denied':
      return {
        title: 'Your microphone is blocked',
        body: 'Voice scenes need your microphone. Your browser (or your system settings) blocked it for this site.',
        steps: UNBLOCK_STEPS,
        next: ['retry', 'text'],
      };
    case 'missing':
      return {
        title: 'No microphone found',
        body: 'Plug in a headset or microphone, check your system sound settings, then try again. You can also keep playing by typing.',
        next: ['retry', 'text'],
      };
    case 'busy':
      return {
        title: 'The microphone is busy',
        body: 'Another app or tab is using your microphone. Close it (video calls are the usual suspect) and try again.',
        next: ['retry', 'text'],
      };
    case 'insecure':
      return {
        title: 'Voice needs a secure connection',
        body: 'Browsers only share the microphone over https. Open this page over https, or keep playing by typing.',
        next: ['text'],
        auto: true,
      };
    case 'unsupported':
      return {
        title: 'This browser cannot do voice scenes',
        body: 'Use a current Chrome, Edge, Firefox or Safari for voice. Typing works everywhere.',
        next: ['text'],
        auto: true,
      };
    default:
      return { title: 'The microphone could not start', body: error.message, next: ['retry', 'text'] };
  }
}

/** Guidance for a close the socket will not recover from by itself. */
export function closeGuidance(code, serverMessage) {
  const said = serverMessage ? ` (${serverMessage})` : '';
  switch (code) {
    case CloseCode.NORMAL:
      return null;
    case CloseCode.UNAUTHENTICATED:
      return { title: 'You are signed out', body: 'Sign in again to keep playing this scene.', next: ['sign-in'] };
    case CloseCode.FORBIDDEN:
      return { title: 'Voice is not available here', body: `This scene cannot use voice for your account${said}. Carry on by typing.`, next: ['text'], auto: true };
    case CloseCode.SCENE_UNAVAILABLE:
      return { title: 'This scene has ended', body: 'The scene is closed or no longer exists. Start a new one from the home page.', next: ['new-scene'] };
    case CloseCode.SUPERSEDED:
      return { title: 'Voice moved to another tab', body: 'You opened this scene’s voice in another tab or window, so this one stopped.', next: ['retry', 'text'], retryLabel: 'Use voice here' };
    case CloseCode.DURATION_CAP:
      return { title: 'Voice session time is up', body: 'Voice sessions have a time limit. Your scene is saved: start voice again to keep going, or type.', next: ['retry', 'text'] };
    case CloseCode.UPSTREAM_FAILURE:
      return { title: 'Your voice partner is unavailable', body: `The voice service failed${said}. Your scene is saved: carry on by typing, and try voice again later.`, next: ['text', 'retry'], auto: true };
    case CloseCode.ROLLED_BACK:
      return { title: 'Voice is turned off for now', body: 'Voice scenes were switched off for your account. Your scene is saved: carry on by typing.', next: ['text'], auto: true };
    case CloseCode.BUDGET_REACHED:
      return { title: 'Voice is paused for today', body: `Today’s voice budget is used up. Your scene is saved: carry on by typing; voice comes back tomorrow.`, next: ['text'], auto: true };
    case CloseCode.LIMIT_EXCEEDED:
      return { title: 'Voice limit reached', body: `You have reached a voice limit${said}. Carry on by typing, or try voice again later.`, next: ['text', 'retry'], auto: true };
    case CloseCode.PROTOCOL_ERROR:
    case CloseCode.TOO_BIG:
      return { title: 'The voice connection hit a snag', body: `The server could not understand the browser${said}. Start voice again; if it keeps happening, reload the page.`, next: ['retry', 'text'] };
    case 0:
      return { title: 'Cannot reach the voice server', body: 'We tried several times. Check your connection, then start voice again — or keep playing by typing.', next: ['retry', 'text'] };
    default:
      return { title: 'Voice stopped', body: `The connection closed unexpectedly (code ${code})${said}.`, next: ['retry', 'text'] };
  }
}
