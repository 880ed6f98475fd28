from django.core.management.base import BaseCommand

from improv.expiry import scenes_expire_stale


class Command(BaseCommand):
    help = "Expire open scenes idle for longer than IMPROV_IDLE_EXPIRY_MINUTES (run it from a scheduler)."

    def add_arguments(self, parser):
        parser.add_argument("--limit", type=int, default=500, help="At most this many per batch.")

    def handle(self, *args, **options):
        total = 0
        while True:  # batches, so a long backlog never loads at once
            done = scenes_expire_stale(limit=options["limit"])
            total += done
            if done < options["limit"]:
                break
        self.stdout.write(f"Expired {total} idle scene{'s' if total != 1 else ''}.")
