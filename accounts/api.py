from __future__ import annotations

from typing import TYPE_CHECKING, cast

from django.http import HttpRequest
from ninja import Router, Schema

if TYPE_CHECKING:
    from django.contrib.auth.models import User

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

    user = cast("User", request.user)  # the API's django_auth lets only signed-in users through
    return MeOut(
        id=user.pk,
        email=user.email,
        name=user.get_full_name() or user.email,
        is_staff=user.is_staff,
        audio_v2=audio_v2_enabled(user),
    )
