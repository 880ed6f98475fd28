"""What a voice session costs: Live token usage by modality, priced from settings.VOICE_PRICING.

The Live API reports usageMetadata per turn, split by modality (`promptTokensDetails`, and
`responseTokensDetails` on the Developer API or `candidatesTokensDetails` on Vertex). Audio is
priced several times higher than text, so the split matters; anything that is not TEXT (audio,
image, video) is priced at the audio rate, as Google's price list does for Live input.
Costs are whole micro-dollars so they can be added up in the store with plain integer increments.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

from django.conf import settings

MICRO = 1_000_000


@dataclass(frozen=True)
class TokenUsage:
    in_text: int = 0
    in_audio: int = 0
    out_text: int = 0
    out_audio: int = 0

    def __add__(self, other: TokenUsage) -> TokenUsage:
        return TokenUsage(*(getattr(self, f.name) + getattr(other, f.name) for f in fields(self)))

    def __bool__(self) -> bool:
        return any(getattr(self, f.name) for f in fields(self))

    @property
    def tokens_in(self) -> int:
        return self.in_text + self.in_audio

    @property
    def tokens_out(self) -> int:
        return self.out_text + self.out_audio


def _non_text(details: Any) -> int:
    total = 0
    for item in details or ():
        modality = getattr(getattr(item, "modality", None), "value", getattr(item, "modality", None))
        if str(modality or "").upper() != "TEXT":
            total += int(getattr(item, "token_count", None) or 0)
    return total


def usage_from_metadata(meta: Any) -> TokenUsage:
    """One usageMetadata (SDK UsageMetadata) as a TokenUsage."""
    prompt = int(getattr(meta, "prompt_token_count", None) or 0)
    out = int(
        getattr(meta, "response_token_count", None) or getattr(meta, "candidates_token_count", None) or 0
    )
    in_audio = min(prompt, _non_text(getattr(meta, "prompt_tokens_details", None)))
    out_details = getattr(meta, "response_tokens_details", None) or getattr(
        meta, "candidates_tokens_details", None
    )
    out_audio = min(out, _non_text(out_details))
    return TokenUsage(
        in_text=prompt - in_audio, in_audio=in_audio, out_text=out - out_audio, out_audio=out_audio
    )


def prices() -> dict[str, float]:
    """USD per 1M tokens for in_text, in_audio, out_text, out_audio."""
    table: dict[str, float] = settings.VOICE_PRICING["usd_per_million_tokens"]
    return {f.name: float(table[f.name]) for f in fields(TokenUsage)}


def cost_micro_usd(usage: TokenUsage, table: dict[str, float] | None = None) -> int:
    """Estimated cost in micro-dollars (USD per 1M tokens x tokens = micro-USD)."""
    table = table or prices()
    return round(sum(getattr(usage, name) * table[name] for name in table))
