#!/usr/bin/env python3
"""Drives an installed service through its REST API for scripts/packaging-check.

    drive.py URL ready                 /health and /ready answer 200
    drive.py URL backup-restore [ROUTINE CLUSTER STORAGE]
                                       a full backup of ROUTINE (default `checked`), then its
                                       restore from STORAGE (`local`) into CLUSTER (`node`);
                                       prints the counts

Exits non-zero with the reason on any unexpected answer. Standard library only, so it runs
on any machine that has python3.
"""

import json
import sys
import time
import urllib.error
import urllib.request

base = sys.argv[1].rstrip("/")
routine, cluster, storage = (sys.argv[3:6] + ["checked", "node", "local"][len(sys.argv[3:6]) :])[:3]


def call(method, path, body=None):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(base + path, data=data, method=method)
    if data is not None:
        req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            raw = r.read().decode()
            status = r.status
    except urllib.error.HTTPError as e:
        raw = e.read().decode()
        status = e.code
    try:
        return status, json.loads(raw)
    except ValueError:
        return status, raw


def until(what, f, secs=120):
    end = time.time() + secs
    last = None
    while time.time() < end:
        try:
            v = f()
            if v:
                return v
        except (urllib.error.URLError, ConnectionError, OSError) as e:
            last = e
        time.sleep(0.3)
    sys.exit(f"timed out waiting for {what} (last error: {last})")


def ready():
    until("/health", lambda: call("GET", "/health")[0] == 200, secs=60)
    status, body = call("GET", "/ready")
    if status != 200:
        sys.exit(f"/ready answered {status}: {body}")
    print(f"/health 200, /ready 200: {str(body).strip()!r}")


def backup_restore():
    ready()
    status, body = call("POST", f"/v1/backups/full/{routine}")
    if status != 202:
        sys.exit(f"starting the backup answered {status}: {body}")

    def listed():
        _, backups = call("GET", f"/v1/backups/full/{routine}")
        return backups[0] if isinstance(backups, list) and backups else None

    backup = until("the backup to be listed", listed)
    if backup.get("record-count", 0) <= 0:
        sys.exit(f"the backup holds no records: {backup}")
    status, job = call(
        "POST",
        "/v1/restore/full",
        {"backup-data-path": backup["key"], "destination-name": cluster, "source-name": storage},
    )
    if status != 202:
        sys.exit(f"starting the restore answered {status}: {job}")

    def finished():
        _, s = call("GET", f"/v1/restore/status/{job}")
        return s if isinstance(s, dict) and s.get("status") not in (None, "running") else None

    done = until("the restore", finished)
    if done["status"] != "success" or done.get("read-records") != backup["record-count"]:
        sys.exit(f"restore: {done}, backup: {backup}")
    print(
        f"backup {backup['key']}: {backup['record-count']} records, "
        f"{backup.get('byte-count')} bytes; restore job {job}: {done['read-records']} read, success"
    )


{"ready": ready, "backup-restore": backup_restore}[sys.argv[2]]()
