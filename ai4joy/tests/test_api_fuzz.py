"""Schemathesis over /api/v1/openapi.json: no operation answers 5xx, and every answer matches the schema.

The requests go through the real WSGI stack (middleware, session-cookie auth, CSRF) as a signed-in
player, so the fuzzer reaches the handlers rather than stopping at 401/403. Scene ids and game
slugs are drawn from the player's real scenes (in every lifecycle state, including a line and a
review left waiting by a Gemini outage) and the real games as well as from the generator, and
Gemini is the local emulator, so lines, retries, suggestions and reviews really run.
"""

from __future__ import annotations

import collections
import os
from dataclasses import dataclass

import hypothesis
import pytest
import schemathesis
from django.core.wsgi import get_wsgi_application
from django.http import HttpRequest
from django.middleware.csrf import get_token
from django.test import Client
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

from improv.tests.conftest import Api, ensure_content, play_to_active
from improv.tests.conftest import gemini_emulator as gemini_emulator  # the app's settings point at it

# `make soak` raises FUZZ_SCALE for a longer run of the same tests.
SCALE = max(1, int(os.environ.get("FUZZ_SCALE", "1")))
schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", get_wsgi_application())


@dataclass
class Player:
    cookies: dict[str, str]
    headers: dict[str, str]
    scenes: dict[str, str]  # lifecycle state -> scene id
    games: list[str]

    def scene_ids(self, *, first: str) -> list[str]:
        """Hypothesis favours the first choice: make it the scene in the state the operation needs."""
        return sorted(self.scenes.values(), key=lambda scene_id: scene_id != self.scenes[first])


# The state each operation acts on; everything else wants an active scene.
OPERATION_STATE = {"/game": "game_selection", "/suggestion": "suggestion", "/retry": "pending"}


@pytest.fixture
def player(make_user, gemini, settings) -> Player:
    """A signed-in player with a real session cookie, a CSRF cookie and header, and scenes in each state.

    The per-player scene limits are lifted so that starting a scene keeps reaching the handler.
    """
    settings.IMPROV_MAX_OPEN_SCENES = settings.IMPROV_SCENES_PER_DAY = 10_000
    ensure_content()  # the transactional flush of the previous test removed the seeded games
    client = Client()
    client.force_login(make_user())
    api = Api(client)
    closed = play_to_active(api)["id"]
    assert api.post(f"/scenes/{closed}/end").status_code == 200
    pending, coaching = play_to_active(api)["id"], play_to_active(api)["id"]
    assert (
        api.post(f"/scenes/{coaching}/turns", {"text": "Captain, the map is upside down!"}).status_code == 200
    )
    gemini.arm({"type": "http_status", "status": 503, "count": 20})  # Gemini down: the line waits,
    assert api.post(f"/scenes/{pending}/turns", {"text": "Who ate the moon?"}).status_code == 503
    assert api.post(f"/scenes/{coaching}/end").status_code == 503  # the review waits
    gemini.clear()
    scenes = {
        "game_selection": api.post("/scenes", {}).json()["id"],
        "suggestion": api.post("/scenes", {"game": "one-word-story"}).json()["id"],
        "active": play_to_active(api)["id"],
        "pending": pending,
        "coaching": coaching,
        "closed": closed,
    }

    request = HttpRequest()
    token = get_token(request)  # masked, as a page would embed it; the cookie holds the secret
    return Player(
        cookies={
            settings.SESSION_COOKIE_NAME: client.cookies[settings.SESSION_COOKIE_NAME].value,
            settings.CSRF_COOKIE_NAME: request.META["CSRF_COOKIE"],
        },
        headers={"X-CSRFToken": token},
        scenes=scenes,
        games=[game["slug"] for game in api.get("/games").json()],
    )


@schema.parametrize()
@schema.given(data=st.data())
@hypothesis.settings(
    max_examples=25 * SCALE,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[hypothesis.HealthCheck.function_scoped_fixture, hypothesis.HealthCheck.too_slow],
)
@pytest.mark.django_db(transaction=True)  # requests commit as in production; no test-wide transaction
def test_api_never_answers_5xx(case, data, player: Player) -> None:
    if "scene_id" in case.path_parameters:
        state = next((s for end, s in OPERATION_STATE.items() if case.path.endswith(end)), "active")
        choices = [*player.scene_ids(first=state), case.path_parameters["scene_id"]]
        case.path_parameters["scene_id"] = data.draw(st.sampled_from(choices), label="scene_id")
    if isinstance(case.body, dict) and isinstance(case.body.get("game"), str):
        case.body["game"] = data.draw(st.sampled_from([*player.games, case.body["game"]]), label="game")
    case.call_and_validate(
        cookies=player.cookies,
        headers=player.headers,
        checks=[not_a_server_error, response_schema_conformance],
    )


# --- stateful: sequences of calls chained by the links schemathesis infers from the schema ------
# (POST /scenes -> 201 {id} -> /scenes/{scene_id}/game, /suggestion, /turns, /turns/retry, /end,
# GET /scenes/{scene_id}, and each of those to the others), so the fuzzer walks real scene
# lifecycles: a game picked after the suggestion, a line in a closed scene, a retry with nothing
# pending, an end twice.
STATEFUL_STEPS: list[int] = []


@pytest.mark.django_db(transaction=True)
def test_api_call_sequences_never_answer_5xx(player: Player, capsys) -> None:
    inferred = schema.as_state_machine()
    transitions = [name for name in dir(inferred) if "__" in name and not name.startswith("_")]
    assert any(name.startswith("POST_api_v1_scenes___201") for name in transitions), transitions

    class SignedIn(inferred):  # type: ignore[misc, valid-type]
        def get_call_kwargs(self, case):
            return {"cookies": player.cookies, "headers": player.headers}

        def validate_response(self, response, case, additional_checks=None, **kwargs):
            STATEFUL_STEPS.append(response.status_code)
            case.validate_response(response, checks=[not_a_server_error, response_schema_conformance])

    SignedIn.run(
        settings=hypothesis.settings(
            max_examples=25 * SCALE,
            stateful_step_count=10,
            deadline=None,
            derandomize=True,
            database=None,
            suppress_health_check=list(hypothesis.HealthCheck),
        )
    )
    with capsys.disabled():
        counts = dict(sorted(collections.Counter(STATEFUL_STEPS).items()))
        print(f"\nstateful API fuzz: {len(STATEFUL_STEPS)} calls in sequences, statuses {counts}")
    assert STATEFUL_STEPS and all(status < 500 for status in STATEFUL_STEPS)
    assert any(200 <= status < 300 for status in STATEFUL_STEPS)  # it reached real handlers
