"""Benchmarks and load tools (`make bench`): dev-only code that may import the emulator; no
production package imports it.

Processes of the voice relay ladder, each its own: the Gemini emulator with stamped audio
(stamped_emulator.py), the app under test (`python -m ai4joy.serve`) or the bare baseline relay
(bare_relay.py), and several load generators (loadgen.py) playing browsers through
audio/protocol.py. run.py drives the ladder, reads CPU and memory of the server processes from
/proc, and writes the report. relay_bench.py is the older single-process relay benchmark.
"""
