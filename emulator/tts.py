"""Speech synthesis for the emulator: espeak-ng (from the espeakng-loader wheel) via ctypes.

espeak-ng keeps global state and is not thread-safe, so every call goes through one lock and one
worker thread. Output is resampled from espeak's 22050 Hz to the 24 kHz Gemini Live sends.
Results are cached per (text, voice) so load tests that repeat lines cost nothing.
"""

from __future__ import annotations

import asyncio
import ctypes
import threading
from array import array
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor

import espeakng_loader

ESPEAK_RATE = 22050
OUTPUT_RATE = 24000
_AUDIO_OUTPUT_SYNCHRONOUS = 2
_ESPEAK_RATE_PARAM = 1
_ESPEAK_PITCH_PARAM = 3
_POS_CHARACTER = 1
_ESPEAK_CHARS_UTF8 = 1
_MAX_TEXT_CHARS = 600  # a partner line is a sentence or two; bounds synthesis time

_CALLBACK = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p)


class _Espeak:
    """The process-wide espeak-ng library handle, initialised on first use."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._lib: ctypes.CDLL | None = None
        self._samples = array("h")
        # Keep a reference: ctypes callbacks are freed when garbage collected.
        self._callback = _CALLBACK(self._on_samples)

    def _on_samples(self, wav: ctypes._Pointer, count: int, _events: int | None) -> int:
        if count > 0 and wav:
            self._samples.frombytes(ctypes.string_at(wav, count * 2))
        return 0

    def _load(self) -> ctypes.CDLL:
        lib = ctypes.CDLL(espeakng_loader.get_library_path())
        data = espeakng_loader.get_data_path().encode()
        rate = lib.espeak_Initialize(_AUDIO_OUTPUT_SYNCHRONOUS, 0, ctypes.c_char_p(data), 0)
        if rate != ESPEAK_RATE:
            raise RuntimeError(f"espeak-ng failed to initialise (returned {rate})")
        lib.espeak_SetSynthCallback(self._callback)
        lib.espeak_Synth.argtypes = [
            ctypes.c_void_p,
            ctypes.c_size_t,
            ctypes.c_uint,
            ctypes.c_int,
            ctypes.c_uint,
            ctypes.c_uint,
            ctypes.c_void_p,
            ctypes.c_void_p,
        ]
        return lib

    def synth(self, text: str, *, voice: str, words_per_minute: int, pitch: int) -> bytes:
        """Returns PCM16 mono at 22050 Hz."""
        with self._lock:
            if self._lib is None:
                self._lib = self._load()
            lib = self._lib
            self._samples = array("h")
            lib.espeak_SetVoiceByName(voice.encode())
            lib.espeak_SetParameter(_ESPEAK_RATE_PARAM, words_per_minute, 0)
            lib.espeak_SetParameter(_ESPEAK_PITCH_PARAM, pitch, 0)
            raw = text.encode("utf-8") + b"\0"
            lib.espeak_Synth(raw, len(raw), 0, _POS_CHARACTER, 0, _ESPEAK_CHARS_UTF8, None, None)
            lib.espeak_Synchronize()
            return self._samples.tobytes()


def resample_pcm16(pcm: bytes, src_rate: int, dst_rate: int) -> bytes:
    """Linear-interpolation resampling; good enough for a synthetic voice and dependency-free."""
    src = array("h")
    src.frombytes(pcm)
    if src_rate == dst_rate or not src:
        return pcm
    n_out = len(src) * dst_rate // src_rate
    step = src_rate / dst_rate
    last = len(src) - 1
    out = array("h", bytes(2 * n_out))
    for i in range(n_out):
        pos = i * step
        j = int(pos)
        if j >= last:
            out[i] = src[last]
            continue
        frac = pos - j
        out[i] = int(src[j] + (src[j + 1] - src[j]) * frac)
    return out.tobytes()


_ENGINE = _Espeak()
# One worker: espeak is serialised anyway, and this keeps synthesis off the event loop.
_EXECUTOR = ThreadPoolExecutor(max_workers=1, thread_name_prefix="emulator-tts")


def synthesize(
    text: str, *, voice: str = "en-us", rate: int = OUTPUT_RATE, pitch: int = 50, words_per_minute: int = 165
) -> bytes:
    """Speaks `text`, returning PCM16 mono at `rate` Hz. Blocking; uncached."""
    pcm = _ENGINE.synth(text[:_MAX_TEXT_CHARS], voice=voice, words_per_minute=words_per_minute, pitch=pitch)
    return resample_pcm16(pcm, ESPEAK_RATE, rate)


class SpeechCache:
    """A bounded LRU of synthesised 24 kHz speech, keyed by (text, pitch).

    Holds futures, so many sessions asking for the same new line at once (a load test) share one
    synthesis instead of queueing one each behind the single espeak thread.
    """

    def __init__(self, max_entries: int = 256) -> None:
        self._entries: OrderedDict[tuple[str, int], asyncio.Future[bytes]] = OrderedDict()
        self._max = max_entries
        self.hits = 0
        self.misses = 0

    async def speak(self, text: str, *, pitch: int = 50) -> bytes:
        key = (text, pitch)
        future = self._entries.get(key)
        if future is not None and not (future.done() and future.exception() is not None):
            self._entries.move_to_end(key)
            self.hits += 1
            return await asyncio.shield(future)
        self.misses += 1
        loop = asyncio.get_running_loop()
        future = loop.run_in_executor(_EXECUTOR, lambda: synthesize(text, pitch=pitch))
        self._entries[key] = future
        while len(self._entries) > self._max:
            self._entries.popitem(last=False)
        # shield: one session being interrupted must not cancel the synthesis others wait for.
        return await asyncio.shield(future)
