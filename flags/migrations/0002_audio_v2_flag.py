"""Create the audio_v2 flag, off: no one is in until the first `rollout advance`."""

from decimal import Decimal

from django.db import migrations


def create_audio_v2(apps, schema_editor):
    Flag = apps.get_model("flags", "Flag")
    Flag.objects.get_or_create(
        name="audio_v2",
        defaults={
            "percent": Decimal(0),
            "superusers": False,  # superusers get voice by rollout like everyone else
            "note": "Real-time voice mode (Gemini Live). Rolled out by `manage.py rollout`; see flags/plan.py.",
        },
    )


class Migration(migrations.Migration):
    dependencies = [("flags", "0001_initial")]

    operations = [migrations.RunPython(create_audio_v2, migrations.RunPython.noop)]
