"""Benchmarks and load tools: dev-only code that may import the emulator; no production package imports it."""
