"""Check recorded gcloud command lines against the installed Cloud SDK's own parser, offline.

Run with the SDK's Python (the test picks it): python3 -S gcloud_parse_check.py SDK_ROOT CALLS_LOG
Each unique `gcloud ...` line of CALLS_LOG (written by the stub gcloud) is executed in this
one process by the SDK's CLI object, with an empty CLOUDSDK_CONFIG and prompts disabled.
A line the parser rejects (unknown flag, bad choice, missing required flag) exits 2; a line
that parses goes on to need credentials and stops at "You do not currently have an active
account" before any network call. Anything other than that auth stop counts as a failure.
This verifies flag names, groups and choices; it cannot verify what the API would accept.
Prints one line per failure and a summary; exits 1 if any line failed.
"""

import os
import shlex
import sys
import tempfile

AUTH_STOP = "do not currently have an active account"


def main() -> int:
    sdk, log = sys.argv[1], sys.argv[2]
    sys.path.insert(0, os.path.join(sdk, "lib", "third_party"))
    sys.path.insert(0, os.path.join(sdk, "lib"))
    os.environ["CLOUDSDK_CONFIG"] = tempfile.mkdtemp(prefix="empty-gcloud-config-")
    os.environ["CLOUDSDK_CORE_DISABLE_PROMPTS"] = "1"
    for var in ("CLOUDSDK_AUTH_ACCESS_TOKEN_FILE", "GOOGLE_APPLICATION_CREDENTIALS", "CLOUDSDK_CORE_ACCOUNT"):
        os.environ.pop(var, None)
    from googlecloudsdk import gcloud_main

    cli = gcloud_main.CreateCLI([])
    commands, seen = [], set()
    with open(log) as fh:
        for line in fh:
            if line.startswith("gcloud "):
                args = shlex.split(line, comments=True)[1:]
                if tuple(args) not in seen:
                    seen.add(tuple(args))
                    commands.append(args)
    saved_stderr = os.dup(2)
    failures = 0
    for args in commands:
        with tempfile.TemporaryFile() as captured:
            sys.stderr.flush()
            os.dup2(captured.fileno(), 2)
            code: int | str | None
            try:
                cli.Execute(args)
                code = 0
            except SystemExit as exc:
                code = exc.code
            except BaseException as exc:  # report anything else as a failure
                code = f"{type(exc).__name__}: {exc}"
            finally:
                sys.stderr.flush()
                os.dup2(saved_stderr, 2)
            captured.seek(0)
            message = captured.read().decode(errors="replace")
        if code == 2 or (code != 0 and AUTH_STOP not in message):
            failures += 1
            print(f"FAIL (exit {code}): gcloud {shlex.join(args)}\n    {message.strip()[-600:]}")
    print(f"{len(commands)} unique gcloud command lines checked against the real parser, {failures} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
