#!/usr/bin/env python3
"""Evaluates every alert rule and dashboard query against a real Prometheus (scripts/packaging-check).

    check-queries.py PROMETHEUS_URL JOB RULES.yml DASHBOARD.json METRICS.rs

Fails when a query errors, when it names an `aerospike_backup_service_*` metric that the
service (scrape job JOB) does not export (scraped, or registered in METRICS.rs) or a recording rule the rules file does not define,
when a rule's evaluation is unhealthy, when an alert fires on the healthy service, or when a
dashboard query that should show data after a backup comes back empty.
"""

import json
import re
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

import yaml

prom, job, rules_path, dashboard_path, metrics_rs = sys.argv[1:6]

# Grafana's variables, as a dashboard spanning the last few minutes would fill them in.
GRAFANA_VARS = {
    "$__rate_interval": "1m",
    "$__interval": "15s",
    "$__range": "10m",
    "$instance": ".*",
    "$routine": ".*",
}
NAME = re.compile(r"\baerospike_backup_service(?:_[a-z0-9_]+|:[a-z0-9_:]+)")
# Queries that may be empty on a healthy service right after one backup: failures of copies
# and verify jobs (no such job ran) and the progress of a backup that is no longer running.
MAY_BE_EMPTY = ("copy_events_total", "verify_failure_total", "== 1)")


def get(path, **params):
    url = f"{prom}{path}?{urllib.parse.urlencode(params, doseq=True)}"
    with urllib.request.urlopen(url, timeout=30) as r:
        body = json.load(r)
    if body.get("status") != "success":
        raise RuntimeError(body)
    return body["data"]


def query(expr):
    try:
        return get("/api/v1/query", query=expr), None
    except urllib.error.HTTPError as e:
        return None, json.load(e).get("error", str(e))


scraped = set(get("/api/v1/label/__name__/values", **{"match[]": f'{{job="{job}"}}'}))
if not any(n.startswith("aerospike_backup_service_") for n in scraped):
    sys.exit(f"Prometheus has scraped no aerospike_backup_service_* metric from job {job}")
# Labelled families appear in /metrics only once a label set was used (copies, verify jobs):
# those count as exported when host/src/metrics.rs registers them.
declared = set()
source = open(metrics_rs).read()
for n in re.findall(r'(?:name|counter|gauge)\(\s*"([a-z0-9_]+)"', source):
    full = f"aerospike_backup_service_{n}"
    if re.search(rf'HistogramOpts::new\(\s*name\(\s*"{n}"', source):
        declared.update(f"{full}{s}" for s in ("_bucket", "_sum", "_count"))
    else:
        declared.add(full)
exported = scraped | declared
unscraped = sorted(n for n in declared - scraped)

rules = yaml.safe_load(open(rules_path))
records = {r["record"] for g in rules["groups"] for r in g["rules"] if "record" in r}

queries = []  # (source, expr, may_be_empty)
for g in rules["groups"]:
    for r in g["rules"]:
        if "record" in r:
            queries.append((f"record {r['record']}", r["expr"], False))
        else:
            queries.append((f"alert {r['alert']}", r["expr"], True))

dashboard = json.load(open(dashboard_path))


def panels(ps):
    for p in ps:
        yield p
        yield from panels(p.get("panels", []))


for p in panels(dashboard["panels"]):
    for t in p.get("targets", []):
        expr = t["expr"]
        queries.append((f"panel {p['title']!r} {t['refId']}", expr, any(m in expr for m in MAY_BE_EMPTY)))
for v in dashboard.get("templating", {}).get("list", []):
    if v.get("type") != "query":
        continue
    q = v["query"]["query"] if isinstance(v["query"], dict) else v["query"]
    m = re.fullmatch(r"label_values\((.+),\s*(\w+)\)", q.strip())
    if not m:
        sys.exit(f"variable {v['name']}: cannot read {q!r}")
    queries.append((f"variable ${v['name']}", f"group by ({m.group(2)}) ({m.group(1)})", False))

# Rules first evaluate a rule-interval after Prometheus loads them.
deadline = time.time() + 60
while True:
    groups = get("/api/v1/rules")["groups"]
    states = [(r["name"], r.get("health"), r.get("lastError", "")) for g in groups for r in g["rules"]]
    if states and all(h != "unknown" for _, h, _ in states):
        break
    if time.time() > deadline:
        sys.exit(f"rules not evaluated within 60 s: {states}")
    time.sleep(1)

problems = []
for name, health, err in states:
    if health != "ok":
        problems.append(f"rule {name}: health {health}: {err}")
if len(states) != len([q for q in queries if q[0].startswith(("record ", "alert "))]):
    problems.append(f"Prometheus loaded {len(states)} rules, the file has more")

for source, expr, may_be_empty in queries:
    for k, v in GRAFANA_VARS.items():
        expr = expr.replace(k, v)
    for n in sorted(set(NAME.findall(expr))):
        if ":" in n:
            if n not in records:
                problems.append(f"{source}: recording rule {n} is not defined in {rules_path}")
        elif n not in exported:
            problems.append(f"{source}: metric {n} is not exported by the service")
    data, err = query(expr)
    if err:
        problems.append(f"{source}: query error: {err}")
        continue
    n = len(data["result"]) if isinstance(data["result"], list) else 1
    if source.startswith("alert ") and n:
        problems.append(f"{source}: fires on a healthy service: {data['result']}")
    elif n == 0 and not may_be_empty:
        problems.append(f"{source}: no data after a backup: {expr}")
    print(f"  {n:3d} series  {source}")

if problems:
    print("\n".join(["problems:"] + [f"  {p}" for p in problems]), file=sys.stderr)
    sys.exit(1)
if unscraped:
    print(f"registered but not yet in /metrics (no label set used): {', '.join(unscraped)}")
print(
    f"{len(queries)} queries ({len(states)} rules, {sum(1 for q in queries if q[0].startswith('panel'))} "
    f"panel targets, template variables) evaluated against {prom}: no errors, only exported metrics"
)
