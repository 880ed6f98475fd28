"""Admin: rollout actions and pages work for staff with the right permissions, and for no one else."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Permission
from django.urls import reverse

from flags.models import Flag, RolloutChange
from flags.rollout import AUDIO_V2
from flags.services import rollout_set

CHANGELIST = "/admin/flags/flag/"
# The voice feature's Live audio sessions page (audio/admin.py; its own tests in
# audio/tests/test_admin.py): the same staff permissions guard it.
LIVE = "/admin/audio/live-sessions/"
END = "/admin/audio/live-sessions/end/"


@pytest.fixture
def operator(make_user):
    """Staff with the flags permissions (not a superuser)."""
    user = make_user(email="ops@example.com", is_staff=True)
    user.user_permissions.add(*Permission.objects.filter(content_type__app_label="flags"))
    return user


def act(client, flag: Flag, action: str, **fields):
    """Pick the action (shows its form), then apply it with the fields."""
    data = {"action": action, "_selected_action": [flag.pk]}
    form = client.post(CHANGELIST, data)
    assert form.status_code == 200 and b'name="apply"' in form.content
    return client.post(CHANGELIST, {**data, "apply": "1", **fields}, follow=True)


def state() -> str:
    return Flag.objects.get(name=AUDIO_V2).state_label


def test_staff_advance_set_and_roll_back_with_audit(client, operator, audio_v2):
    client.force_login(operator)
    page = client.get(CHANGELIST)
    assert page.status_code == 200
    assert b"Live audio sessions" in page.content and b"Rollout audit log" in page.content

    response = act(client, audio_v2, "advance", reason="day 1")
    assert "audio_v2: 0% -&gt; 1%" in response.content.decode().lower()
    response = act(client, audio_v2, "advance")
    assert "is due" in response.content.decode().lower() and state() == "1%"  # too early: refused, explained
    act(client, audio_v2, "advance", force="on", reason="team is happy")
    assert state() == "10%"

    response = act(client, audio_v2, "set_percent", percent="150")
    assert "from 0 to 100, not 150" in response.content.decode().lower() and state() == "10%"
    act(client, audio_v2, "set_percent", percent="50")
    assert state() == "50%"

    response = act(client, audio_v2, "rollback", reason="")  # reason required: the form comes back
    assert b"This field is required" in response.content and state() == "50%"
    response = act(client, audio_v2, "rollback", reason="error spike")
    assert "50% -&gt; off (rolled back)" in response.content.decode().lower()
    assert state() == "off (rolled back)"

    changes = list(RolloutChange.objects.order_by("id"))
    assert [(c.action, c.from_state, c.to_state, c.reason) for c in changes] == [
        ("advance", "0%", "1%", "day 1"),
        ("advance", "1%", "10%", "team is happy"),
        ("set", "10%", "50%", ""),
        ("rollback", "50%", "off (rolled back)", "error spike"),
    ]
    assert all(c.actor == operator and c.actor_label == "admin:ops@example.com" for c in changes)


def test_audit_log_is_visible_and_read_only(client, operator, audio_v2):
    rollout_set(percent=10, actor_label="ops", reason="go")
    change = RolloutChange.objects.get()
    client.force_login(operator)
    assert b"go" in client.get("/admin/flags/rolloutchange/").content
    assert client.get("/admin/flags/rolloutchange/add/").status_code == 403
    detail = f"/admin/flags/rolloutchange/{change.pk}/change/"
    assert client.get(detail).status_code == 200  # viewable
    client.post(detail, {"reason": "rewritten"})
    assert RolloutChange.objects.get().reason == "go"
    client.post(f"/admin/flags/rolloutchange/{change.pk}/delete/", {"post": "yes"})
    assert RolloutChange.objects.count() == 1


def test_percent_cannot_be_edited_around_the_audit(client, operator, audio_v2):
    client.force_login(operator)
    html = client.get(f"/admin/flags/flag/{audio_v2.pk}/change/").content.decode()
    assert 'name="percent"' not in html and 'name="everyone"' not in html


@pytest.mark.parametrize("who", ["anonymous", "player"])
def test_non_staff_are_sent_to_the_admin_login_and_change_nothing(client, make_user, audio_v2, who):
    if who == "player":
        client.force_login(make_user())
    data = {"action": "rollback", "_selected_action": [audio_v2.pk], "apply": "1", "reason": "x"}
    for response in (
        client.get(CHANGELIST),
        client.post(CHANGELIST, data),
        client.get(LIVE),
        client.post(END, {"user_id": 1}),
    ):
        assert response.status_code == 302
        assert response["Location"].startswith(reverse("admin:login"))
    assert state() == "0%" and not RolloutChange.objects.exists()


def test_staff_without_flag_permissions_get_403(client, make_user, audio_v2):
    client.force_login(make_user(is_staff=True))
    assert client.get(CHANGELIST).status_code == 403
    assert client.get(LIVE).status_code == 403
    assert client.post(END, {"user_id": 1}).status_code == 403
    data = {"action": "rollback", "_selected_action": [audio_v2.pk], "apply": "1", "reason": "x"}
    assert client.post(CHANGELIST, data).status_code == 403
    assert state() == "0%"


def test_view_only_staff_see_sessions_but_cannot_act(client, make_user, audio_v2):
    viewer = make_user(is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_flag", content_type__app_label="flags"))
    client.force_login(viewer)
    assert client.get(LIVE).status_code == 200
    assert client.post(END, {"user_id": 1}).status_code == 403
    assert client.get(END).status_code in (403, 405)
    rollout_before = state()
    data = {"action": "rollback", "_selected_action": [audio_v2.pk], "apply": "1", "reason": "x"}
    client.post(CHANGELIST, data)
    assert state() == rollout_before
