// The review page: copy the transcript to the clipboard. The downloads are plain links (they
// work without JavaScript); this only adds the one thing a link cannot do.

const source = document.getElementById('transcript-text');
const button = document.querySelector('[data-copy-transcript]');
const status = document.querySelector('[data-copy-status]');

function say(text) {
  if (status) status.textContent = text;
}

if (source && button && navigator.clipboard && window.isSecureContext) {
  const text = JSON.parse(source.textContent);
  button.hidden = false;
  button.addEventListener('click', async () => {
    try {
      await navigator.clipboard.writeText(text);
      say('Transcript copied to the clipboard.');
    } catch {
      // Refused (a policy, or the page lost focus): the download links still work.
      say('Could not copy — your browser refused. Use “Download as text” instead.');
    }
  });
}
