#!/usr/bin/env bash
# The Debian package, as an administrator gets it: built by
# dpkg-buildpackage from debian/ (packaging this build folder's programs),
# lintian-clean (no errors), installed with apt-get, its unit accepted by systemd-analyze,
# and its ExecStart line run by hand (as the pwsync user, with systemd's
# readiness protocol) against the test environment: a Windows -> External
# change through the installed daemon, then cn=monitor and /metrics.
# Needs root (it installs the package); runs in the normal build only.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
: "${PWSYNC_BIN:?PWSYNC_BIN must name the build folder}"
# shellcheck source=/dev/null
source "$PWSYNC_TESTENV_STATE/env.sh"
# shellcheck source=../../testenv/lib/gateway.sh
source "$top/testenv/lib/gateway.sh"

failures=0
check() {  # check NAME CMD...
    local name=$1
    shift
    if "$@"; then echo "ok - $name"; else echo "FAIL - $name"; failures=$((failures + 1)); fi
}
[ "$(id -u)" -eq 0 ] || { echo "FAIL - the package test installs a package: run it as root"; exit 1; }

tmp=$(mktemp -d)
work=/var/lib/pwsync-ci-test
conf=/etc/pwsync/pwsyncd.conf
cleanup() {
    gw_stop
    # Leave alice's slapd password as the other tests expect it.
    if [ -n "${GW_WORK:-}" ] && [ -d "$GW_WORK" ]; then
        ldap_admin_reset alice "$PWSYNC_TEST_LDAP_PASSWORD_ALICE" || echo "FAIL - could not reset alice in slapd"
    fi
    [ -n "${recv_pid:-}" ] && kill "$recv_pid" 2>/dev/null
    if [ -f "$tmp/pwsyncd.conf.orig" ]; then cp -p "$tmp/pwsyncd.conf.orig" "$conf"; fi
    apt-get purge -y -qq pwsync >/dev/null 2>&1 || true
    rm -rf "$tmp" "$work"
}
trap cleanup EXIT

# --- build and inspect the package
# dpkg-buildpackage from debian/, on a copy of this tree (the .deb lands
# next to it, not in the tree), packaging the programs of this build folder
# (PWSYNC_DEB_PREBUILT, debian/rules): what ships is what the suite tested,
# and CI pays for no second compile. `dpkg-buildpackage -us -uc -b` without
# it compiles from source with Debian's flags (README; a full build, 8-9 min
# on two cores).
debdir=$PWSYNC_BIN/deb
rm -rf "$debdir"
mkdir -p "$debdir/src"
git -C "$top" ls-files -z --cached --others --exclude-standard |
    (cd "$top" && tar --null -T - --ignore-failed-read -cf -) | tar -C "$debdir/src" -xf -
built=$(date +%s)
(cd "$debdir/src" && PWSYNC_DEB_PREBUILT=$PWSYNC_BIN DEB_BUILD_OPTIONS="nocheck noautodbgsym" dpkg-buildpackage -us -uc -b \
    >"$tmp/build.log" 2>&1) || { tail -50 "$tmp/build.log"; exit 1; }
deb=$(ls "$debdir"/pwsync_*.deb)
echo "# built $(basename "$deb") ($(stat -c %s "$deb") bytes) in $(( $(date +%s) - built )) s"
lintian --fail-on error --tag-display-limit 0 --display-info "$debdir"/pwsync_*.changes >"$tmp/lintian.log" 2>&1 && rc=0 || rc=$?
sed 's/^/# lintian: /' "$tmp/lintian.log"
check "lintian: no errors" test "$rc" = 0
dpkg-deb -c "$deb" >"$tmp/contents"
check "the DC's hook is a link to pwsync-notify (no wrapper script)" \
    grep -q " ./usr/lib/pwsync/samba-check-password -> ../../bin/pwsync-notify\$" "$tmp/contents"
for f in ./usr/bin/pwsync ./usr/bin/pwsync-notify ./usr/sbin/pwsyncd ./lib/systemd/system/pwsyncd.service ./etc/pwsync/pwsyncd.conf \
         ./etc/pwsync/hook.conf ./usr/share/man/man8/pwsync.8.gz ./usr/share/man/man8/pwsync-notify.8.gz \
         ./usr/share/man/man8/pwsyncd.8.gz ./usr/share/man/man5/pwsyncd.conf.5.gz \
         ./usr/share/bash-completion/completions/pwsync; do
    check "package holds $f" grep -q " $f\$" "$tmp/contents"
done
dpkg-deb -f "$deb" Depends >"$tmp/depends"
check "Depends names the shared libraries (shlibdeps)" grep -q "libldap" "$tmp/depends"
dpkg-deb -e "$deb" "$tmp/control"
check "conffiles" grep -qx /etc/pwsync/pwsyncd.conf "$tmp/control/conffiles"
check "postinst is packaging/postinst with debhelper's systemd snippet" \
    bash -c "grep -q 'adduser --system' '$tmp/control/postinst' && grep -q 'deb-systemd-helper' '$tmp/control/postinst'"
check "prerm stops the unit on removal (debhelper's snippet)" grep -q "deb-systemd-invoke stop 'pwsyncd.service'" "$tmp/control/prerm"
# Samba starts the hook in every password change: each library it loads is
# start-up time (a unity build once merged the INI reader, and Boost, into it).
check "pwsync-notify loads OpenSSL and the C/C++ runtime only" bash -c "dpkg-deb --fsys-tarfile '$deb' | tar -xOf - ./usr/bin/pwsync-notify >'$tmp/pwsync-notify' && readelf -d '$tmp/pwsync-notify' >'$tmp/notify.dyn' && grep -q 'NEEDED.*\\[libssl\\.so\\.' '$tmp/notify.dyn' && ! grep NEEDED '$tmp/notify.dyn' | grep -v -e '\\[libssl\\.so\\.' -e '\\[libcrypto\\.so\\.' -e '\\[libstdc++\\.so\\.' -e '\\[libgcc_s\\.so\\.' -e '\\[libc\\.so\\.' -e '\\[libm\\.so\\.'"
check "no debug symbols left in pwsyncd (stripped)" bash -c "dpkg-deb --fsys-tarfile '$deb' | tar -xOf - ./usr/sbin/pwsyncd >'$tmp/pwsyncd' && ! readelf -S '$tmp/pwsyncd' | grep -q debug_info"

# --- install as an administrator would
apt-get install -y -qq "$deb" >"$tmp/apt.log" 2>&1 || { cat "$tmp/apt.log"; exit 1; }
check "pwsyncd --version" bash -c "/usr/sbin/pwsyncd --version | grep -q '^pwsyncd '"
check "pwsync --help" bash -c "/usr/bin/pwsync --help | grep -q 'import esso'"
check "service user pwsync, no login shell" bash -c "getent passwd pwsync | grep -q ':/usr/sbin/nologin$'"
check "store folder private to pwsync" bash -c "[ \"\$(stat -c '%U %a' /var/lib/pwsync)\" = 'pwsync 700' ]"
check "configuration not world-readable" bash -c "[ \"\$(stat -c '%G %a' $conf)\" = 'pwsync 640' ]"
unit=/lib/systemd/system/pwsyncd.service
# --man=no: the Documentation= pages are checked above (some images drop
# /usr/share/man at install time).
check "systemd-analyze verify accepts the unit" bash -c "systemd-analyze verify --man=no '$unit' >'$tmp/verify.log' 2>&1 && ! [ -s '$tmp/verify.log' ] || { cat '$tmp/verify.log'; false; }"
for setting in NoNewPrivileges=yes ProtectSystem=strict PrivateTmp=yes Type=notify User=pwsync "CapabilityBoundingSet=" \
               "RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX" ReadWritePaths=/var/lib/pwsync Restart=on-failure; do
    check "unit has $setting" grep -qx "$setting" "$unit"
done

# --- the unit's ExecStart by hand, as the service user, against the test environment
gw_setup "$work"
GW_PWSYNC=/usr/bin/pwsync
GW_PWSYNCD=/usr/sbin/pwsyncd
gw_configure
(umask 077 && printf '%s' 'Monitor-Secret-12345' >"$work/monitor.secret"
 printf '%s' 'Pkg-Dc-Secret-12345' >"$work/pkgdc.secret")
# A post-commit capture principal: what a Windows DC's agent uses. (AD
# itself is left alone: its password history would not let the test put
# alice's password back.)
/usr/bin/pwsync principal create pkg-dc --kind windows --capture post-commit <"$work/pkgdc.secret" >/dev/null
/usr/bin/pwsync principal create nagios --kind monitor <"$work/monitor.secret" >/dev/null
mkdir -p "$work/tls"
cp "$PWSYNC_TEST_GATEWAY_CERT" "$work/tls/gateway.pem"
cp "$PWSYNC_TEST_GATEWAY_KEY" "$work/tls/gateway.key"
cp "$PWSYNC_TEST_SVC_PASSWORD_FILE" "$work/ad.secret"
cp "$PWSYNC_TEST_CA" "$work/tls/ca.pem"
# Everything the service reads must be readable by pwsync (the test state
# folder is root's): the TLS material and secrets go next to the store.
sed -e "s|$PWSYNC_TEST_CA|$work/tls/ca.pem|g" -e "s|^cert = .*|cert = $work/tls/gateway.pem|" -e "s|^key = $PWSYNC_TEST_GATEWAY_KEY|key = $work/tls/gateway.key|" \
    -e "s|^bind-password-file = .*|bind-password-file = $work/ad.secret|" "$work/pwsyncd.conf" >"$tmp/pwsyncd.conf"
printf '[monitor]\nhttp = 127.0.0.1:9464\n' >>"$tmp/pwsyncd.conf"
/usr/bin/pwsync adapter update ext-ldap --property "ca=$work/tls/ca.pem" >/dev/null
cp -p "$conf" "$tmp/pwsyncd.conf.orig"
install -o root -g pwsync -m 0640 "$tmp/pwsyncd.conf" "$conf"
chown -R pwsync:pwsync "$work"

pre=$(sed -n 's/^ExecStartPre=//p' "$unit")
start=$(sed -n 's/^ExecStart=//p' "$unit")
as_pwsync() { setpriv --reuid pwsync --regid pwsync --init-groups --inh-caps=-all -- "$@"; }
check "ExecStartPre (--check-config) as pwsync" bash -c "$(declare -f as_pwsync); as_pwsync $pre | grep -q 'configuration OK'"

# systemd's side of Type=notify: a datagram socket that must see READY=1.
sock=$tmp/notify.sock
python3 - "$sock" >"$tmp/notify.out" <<'PY' &
import os, socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1]); os.chmod(sys.argv[1], 0o777)
s.settimeout(20)
print(s.recv(4096).decode(), flush=True)
PY
recv_pid=$!
chmod 0755 "$tmp"
for _ in $(seq 50); do [ -S "$sock" ] && break; sleep 0.1; done
# setpriv execs the daemon: $! is pwsyncd itself.
setpriv --reuid pwsync --regid pwsync --init-groups --inh-caps=-all -- env NOTIFY_SOCKET="$sock" $start \
    2>>"$work/pwsyncd.stderr" &
GW_PID=$!
started=$(date +%s%3N)
wait "$recv_pid" || true
recv_pid=
check "READY=1 reaches systemd's socket ($(( $(date +%s%3N) - started )) ms)" grep -q '^READY=1' "$tmp/notify.out"
check "the daemon runs as pwsync" bash -c "[ \"\$(ps -o user= -p $GW_PID)\" = pwsync ]"

# Windows -> External through the installed daemon.
printf '%s' 'Deb-Install-Pw.7!' >"$tmp/new.pw"
check "a captured change for alice is stored by the installed daemon" \
    bash -c "/usr/bin/pwsync notify --account '$PWSYNC_TEST_DC_DOMAIN\\alice' --gateway ldaps://127.0.0.1:1636 \
             --principal pkg-dc --secret-file '$work/pkgdc.secret' --ca '$PWSYNC_TEST_CA' --quiet <'$tmp/new.pw'"
ms=$(wait_for 15 ldap_bind_ok "$PWSYNC_TEST_LDAP_URI" "uid=alice,$PWSYNC_TEST_LDAP_PEOPLE" 'Deb-Install-Pw.7!') || ms=
check "slapd accepts alice's new password (${ms:-never} ms)" test -n "$ms"
# The same as the DC's hook, through the package's link (Samba's input: the
# account in SAMBA_CPS_ACCOUNT_NAME, the password on stdin). The hook fails
# open, so only slapd can tell that it stored the change.
printf '[notify]\ngateway = ldaps://127.0.0.1:1636\nprincipal = pkg-dc\nsecret-file = %s\nca = %s\n' \
    "$work/pkgdc.secret" "$PWSYNC_TEST_CA" >"$work/hook.conf"
printf '%s' 'Deb-Hook-Pw.8!' >"$tmp/hook.pw"
check "the package's samba-check-password runs as the hook" \
    bash -c "env -i PATH=/usr/bin:/bin SAMBA_CPS_ACCOUNT_NAME=alice /usr/lib/pwsync/samba-check-password --config '$work/hook.conf' <'$tmp/hook.pw'"
ms=$(wait_for 15 ldap_bind_ok "$PWSYNC_TEST_LDAP_URI" "uid=alice,$PWSYNC_TEST_LDAP_PEOPLE" 'Deb-Hook-Pw.8!') || ms=
check "slapd accepts the password the hook sent (${ms:-never} ms)" test -n "$ms"

# Monitoring: cn=monitor for the monitor principal, and /metrics.
ldapsearch -LLL -x -H ldaps://127.0.0.1:1636 -D cn=nagios -y "$work/monitor.secret" -b cn=monitor \
    '(objectClass=*)' >"$tmp/monitor.ldif" 2>&1 || true
check "cn=monitor counts the stored Windows change" \
    bash -c "grep -A7 '^dn: cn=windows,cn=changes,cn=monitor' '$tmp/monitor.ldif' | grep -q '^pwsyncStored: [1-9]'"
check "cn=monitor lists the ldap adapter" grep -q '^dn: cn=ext-ldap,cn=adapters,cn=monitor' "$tmp/monitor.ldif"
rc=0
ldapsearch -LLL -x -H ldaps://127.0.0.1:1636 -D cn=ldap-agent -y "$work/agent.secret" -b cn=monitor >/dev/null 2>&1 || rc=$?
check "an adapter principal may not read cn=monitor (50)" test "$rc" = 50
metrics() { exec 3<>/dev/tcp/127.0.0.1/9464 && printf 'GET /metrics HTTP/1.0\r\n\r\n' >&3 && cat <&3; }
metrics >"$tmp/metrics.txt" || true
check "/metrics answers 200" grep -q '^HTTP/1.1 200' "$tmp/metrics.txt"
check "/metrics counts the change" grep -Eq '^pwsync_changes_total\{mode="windows",result="stored"\} [1-9]' "$tmp/metrics.txt"
check "/metrics has queue depth per adapter" grep -q '^pwsync_queued{adapter="ext-ldap"} ' "$tmp/metrics.txt"

kill -TERM "$GW_PID"
rc=0
wait "$GW_PID" || rc=$?
GW_PID=
check "SIGTERM: clean exit" test "$rc" = 0
for f in "$work/pwsyncd.log" "$work/pwsyncd.stderr" "$tmp/monitor.ldif" "$tmp/metrics.txt"; do
    check "no password in $(basename "$f")" bash -c "! grep -q -e 'Deb-Install-Pw.7' -e 'Monitor-Secret' '$f'"
done
echo "# $failures failure(s)"
[ "$failures" -eq 0 ]
