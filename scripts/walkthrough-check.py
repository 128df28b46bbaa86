"""The end of docs/PLUGINS.md's walkthrough, run by scripts/plugin-template-check against a
service configured with the two generated plugins: an on-demand backup through them, listed
with its pipeline, then a restore of it that reads back every record.

    python3 scripts/walkthrough-check.py HTTP_PORT
"""
import json
import sys
import time
import urllib.error
import urllib.request

BASE = f"http://127.0.0.1:{sys.argv[1]}"


def call(method, path, body=None):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(
        BASE + path, method=method, data=data, headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(req, timeout=60) as r:
        text = r.read().decode()
        try:
            return r.status, json.loads(text)
        except json.JSONDecodeError:
            return r.status, text  # /health answers plain text


def until(what, f, secs=120):
    end = time.time() + secs
    while time.time() < end:
        try:
            v = f()
            if v:
                return v
        except (urllib.error.URLError, ConnectionError):
            pass
        time.sleep(0.5)
    sys.exit(f"timed out waiting for {what}")


def first_backup():
    _, listed = call("GET", "/v1/backups/full/nightly")
    return listed[0] if listed else None


def finished(job):
    _, status = call("GET", f"/v1/restore/status/{job}")
    return status if status["status"] != "running" else None


until("the service", lambda: call("GET", "/health")[0] == 200)
status, _ = call("POST", "/v1/backups/full/nightly")
assert status == 202, status
backup = until("the backup", first_backup)
assert backup["record-count"] > 0, backup
assert backup["pipeline"][0]["plugin"] == "xor-demo", backup
status, job = call(
    "POST",
    "/v1/restore/full",
    {"backup-data-path": backup["key"], "destination-name": "local", "source-name": "mine"},
)
assert status == 202, status
done = until("the restore", lambda: finished(job))
assert done["status"] == "success", done
assert done["read-records"] == backup["record-count"], (done, backup)
print(
    f"backed up {backup['record-count']} records through xor-demo into store-demo "
    "and restored every one"
)
