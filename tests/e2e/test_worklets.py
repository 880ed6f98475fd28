"""The two AudioWorklets on their own, in Chromium: resampling, clamping, framing, barge-in."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.e2e

# 1 s at 44.1 kHz (a ratio of 2.75625, the awkward case) of a signal far outside [-1, 1]:
# +2 for the first half, -2 for the second. Rendered offline, so the result is exact.
RECORDER = """async () => {
  const ctx = new OfflineAudioContext(1, 44100, 44100);
  await ctx.audioWorklet.addModule('/static/js/recorder.worklet.js');
  const node = new AudioWorkletNode(ctx, 'pcm16-recorder', {
    numberOfInputs: 1, numberOfOutputs: 0, processorOptions: { targetRate: 16000, frameMs: 40 } });
  const frames = [];
  node.port.onmessage = (e) => frames.push(new Int16Array(e.data.pcm));
  const source = new ConstantSourceNode(ctx, { offset: 2 });
  source.offset.setValueAtTime(-2, 0.5);
  source.connect(node);
  source.start();
  await ctx.startRendering();
  await new Promise((resolve) => setTimeout(resolve, 300));
  const all = frames.flatMap((f) => Array.from(f));
  return { lengths: frames.map((f) => f.length), total: all.length,
           first: all.slice(0, 5), last: all.slice(-5), max: Math.max(...all), min: Math.min(...all) };
}"""

PLAYER = """async () => {
  const { PcmPlayer } = await import('/static/js/player.js');
  const ctx = new AudioContext();
  await ctx.resume();
  const player = new PcmPlayer(ctx, { jitterMs: 80 });
  await player.start();
  const events = [];
  for (const type of ['started', 'cleared', 'drained']) {
    player.addEventListener(type, (e) => events.push({ type, droppedMs: e.detail.droppedMs }));
  }
  const wait = (ms) => new Promise((r) => setTimeout(r, ms));
  const until = async (check, ms) => { const end = performance.now() + ms;
    while (!check()) { if (performance.now() > end) return false; await wait(20); } return true; };
  // 2 s of a 440 Hz tone at 24 kHz, sent in one go (the server may burst faster than real time).
  const pcm = new Int16Array(48000);
  for (let i = 0; i < pcm.length; i++) pcm[i] = Math.round(Math.sin(2 * Math.PI * 440 * i / 24000) * 12000);
  player.enqueue(pcm.buffer);
  const audible = await until(() => player.stats.audibleBlocks > 20, 5000);
  const heardBefore = player.stats.audibleBlocks;
  player.interrupt();
  const cleared = await until(() => events.some((e) => e.type === 'cleared'), 2000);
  await wait(400);  // several stats windows after the clear
  const heardAfterClear = player.stats.audibleBlocks;
  const result = { audible, cleared, events, heardBefore, heardAfterClear, rmsAfter: player.stats.rms,
                   bufferedAfter: player.stats.bufferedMs };
  player.stop();
  await ctx.close();
  return result;
}"""


@pytest.fixture
def page(voice_stack, browser):
    context = browser.new_context(base_url=voice_stack.url)
    page = context.new_page()
    page.goto("/accounts/login/")  # any same-origin page: the worklets load from /static/js/
    yield page
    context.close()


def test_the_recorder_resamples_to_16khz_in_40ms_frames_and_clamps_instead_of_wrapping(page):
    result = page.evaluate(RECORDER)
    assert result["total"] == 16000  # exactly 1 s at 16 kHz out of 1 s at 44.1 kHz
    assert set(result["lengths"]) == {640}  # 40 ms frames
    assert result["first"] == [32767] * 5  # +2.0 clamps to full scale, never wraps negative
    assert result["last"] == [-32768] * 5
    assert result["max"] == 32767 and result["min"] == -32768


def test_the_player_plays_24khz_audio_and_empties_its_buffer_at_once_on_interrupt(page):
    result = page.evaluate(PLAYER)
    assert result["audible"], result
    assert result["cleared"], result
    cleared = next(e for e in result["events"] if e["type"] == "cleared")
    assert cleared["droppedMs"] > 500, result  # most of the 2 s was still queued
    # Nothing audible after the clear beyond the render quantum in flight.
    assert result["heardAfterClear"] - result["heardBefore"] <= 30, result
    assert result["rmsAfter"] == 0 and result["bufferedAfter"] == 0, result
