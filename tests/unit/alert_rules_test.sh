#!/usr/bin/env bash
# The Prometheus alert rules (docs/monitoring/pwsync-alerts.yml): valid for
# promtool, each alert covered by pwsync_alerts_test.yml, and each firing
# and staying quiet as that file expects. The Grafana dashboard
# (pwsync-dashboard.json): valid JSON, its queries valid PromQL. Both name
# only metrics pwsyncd exports. No servers.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
rules=$top/docs/monitoring/pwsync-alerts.yml
dashboard=$top/docs/monitoring/pwsync-dashboard.json
tests=$here/pwsync_alerts_test.yml
command -v promtool >/dev/null || { echo "FAIL - promtool missing (Debian package prometheus, testenv/packages.txt)"; exit 1; }
failures=0
promtool check rules "$rules" || failures=$((failures + 1))
alerts=$(sed -n 's/^ *- alert: *//p' "$rules")
[ -n "$alerts" ] || { echo "FAIL - no alert in $rules"; failures=$((failures + 1)); }
for a in $alerts; do
    # Covered = some evaluation of this alert expects it to fire.
    if ! grep -A2 "alertname: $a\$" "$tests" | grep -q 'exp_alerts:$'; then
        echo "FAIL - $a is never expected to fire in $(basename "$tests")"
        failures=$((failures + 1))
    fi
done
(cd "$here" && promtool test rules "$(basename "$tests")") || failures=$((failures + 1))

# The dashboard's queries as recording rules: promtool parses each one.
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
python3 - "$dashboard" >"$tmp/dashboard-rules.yml" <<'PY' || failures=$((failures + 1))
import json, sys
panels = json.load(open(sys.argv[1]))["panels"]
exprs = [t["expr"] for p in panels for t in p["targets"]]
assert exprs, "no query in the dashboard"
print("groups:\n  - name: dashboard\n    rules:")
for i, e in enumerate(exprs):
    print(f"      - record: dashboard_query_{i}\n        expr: {json.dumps(e)}")
PY
promtool check rules "$tmp/dashboard-rules.yml" || failures=$((failures + 1))
# Every metric named exists in pwsyncd's /metrics (up is Prometheus' own).
for m in $(grep -oh 'pwsync_[a-z0-9_]*' "$rules" "$dashboard" | sort -u); do
    if ! grep -q "\"$m[{\" ]" "$top/gateway/src/monitoring/metrics.cpp"; then
        echo "FAIL - $m is not a metric pwsyncd exports (gateway/src/monitoring/metrics.cpp)"
        failures=$((failures + 1))
    fi
done
echo "# $failures failure(s)"
[ "$failures" -eq 0 ]
