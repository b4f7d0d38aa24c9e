#!/usr/bin/env bash
# The Prometheus alert rules (docs/monitoring/pwsync-alerts.yml): valid for
# promtool, each alert covered by pwsync_alerts_test.yml, and each firing
# and staying quiet as that file expects. No servers.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
rules=$here/../../docs/monitoring/pwsync-alerts.yml
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
echo "# $failures failure(s)"
[ "$failures" -eq 0 ]
