from __future__ import annotations

from django.http import HttpRequest
from ninja import Router, Schema

router = Router(tags=["accounts"])


class MeOut(Schema):
    id: int
    email: str
    name: str
    is_staff: bool
    audio_v2: bool


@router.get("/me", response=MeOut, summary="The signed-in user")
def me(request: HttpRequest) -> MeOut:
    from flags.rollout import audio_v2_enabled

    user = request.user
    return MeOut(
        id=user.pk,
        email=user.email,  # type: ignore[union-attr]
        name=user.get_full_name() or user.email,  # type: ignore[union-attr]
        is_staff=user.is_staff,
        audio_v2=audio_v2_enabled(user),
    )
