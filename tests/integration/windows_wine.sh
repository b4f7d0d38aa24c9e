#!/bin/bash
# The Windows capture under wine, against the real pwsyncd, Samba AD DC and
# slapd: pwsyncflt.dll loaded by a stand-in for lsass, pwsync-agent install
# (refusing LSA protection and a damaged package list, warning when another
# product replaced the list) / status (loaded by lsass this boot or not,
# last spooled change, service) / once / uninstall, changes waiting in the spool while the gateway is down,
# a damaged spool entry set aside, failover past a dead gateway URI, and no
# password in the spool, the agent's log or the event log output.
# Needs PWSYNC_BIN (host build), PWSYNC_WINDOWS_BIN (the mingw build) and
# PWSYNC_WINE_PREFIX (created here on first use, then reused).
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=../../testenv/lib/harness.sh
source "$here/../../testenv/lib/harness.sh"
harness_begin windows_wine netns env gateway
[[ -n ${PWSYNC_BIN:-} && -n ${PWSYNC_WINDOWS_BIN:-} && -n ${PWSYNC_WINE_PREFIX:-} ]] ||
    die "PWSYNC_BIN, PWSYNC_WINDOWS_BIN and PWSYNC_WINE_PREFIX must be set"

t0=$(date +%s%3N)
W=$(mktemp -d "$PWSYNC_TEST_TMP/wine.XXXXXX")
# wine is noisy on stderr: checks here discard it.
check() { check_quiet "$@"; }

WINE=/usr/lib/wine/wine64
export WINEPREFIX=$PWSYNC_WINE_PREFIX WINEARCH=win64 WINEDLLOVERRIDES="mscoree,mshtml="
# Only the event log channel: what ReportEventW was given goes to stderr.
export WINEDEBUG=-all,+eventlog
winpath() { printf 'Z:%s' "${1//\//\\}"; }
WBIN=$PWSYNC_WINDOWS_BIN
AGENT=$WBIN/pwsync-agent.exe
DLL_W=$(winpath "$WBIN/pwsyncflt.dll")
PD=$WINEPREFIX/drive_c/ProgramData/pwsync
SPOOL=$PD/spool
# Every wine call's stderr (event log output included) is kept for the leak check.
wine_run() { "$WINE" "$@" 2>>"$W/wine.stderr"; }
agent() { wine_run "$AGENT" "$@"; }
spool_count() { find "$SPOOL" -maxdepth 1 -name '*.pws' | wc -l; }

# Gives alice, bob and carol their original slapd passwords back: the tests
# after this one (gateway_e2e) start from them.
restore_slapd() {
    local u dn pw
    for u in alice bob carol; do
        dn=PWSYNC_TEST_LDAP_DN_${u^^} pw=PWSYNC_TEST_LDAP_PASSWORD_${u^^}
        (umask 077 && printf '%s' "${!pw}" >"$W/.restore")
        ldappasswd -x -o nettimeout=5 -H "$PWSYNC_TEST_LDAP_URI" -D "$PWSYNC_TEST_LDAP_ROOTDN" \
            -y "$PWSYNC_TEST_LDAP_ROOTPW_FILE" -T "$W/.restore" "${!dn}" >/dev/null 2>&1
    done
    rm -f "$W/.restore"
}
cleanup() {
    gw_stop
    restore_slapd
    WINEDEBUG=-all "$WINE" "$AGENT" uninstall >/dev/null 2>&1
    /usr/lib/wine/wineserver -k 2>/dev/null
    [[ -n ${PWSYNC_WINE_KEEP:-} ]] && cp -r "$W" "$PD" "$PWSYNC_WINE_KEEP"/
    rm -rf "$W" "$PD"
}
trap cleanup EXIT

# ---- the wine prefix: created once (wineboot is slow), reused after ----
if [[ ! -f $WINEPREFIX/system.reg ]]; then
    mkdir -p "$WINEPREFIX"
    s=$(date +%s%3N)
    WINEDEBUG=-all "$WINE" wineboot -i >/dev/null 2>&1
    /usr/lib/wine/wineserver -w
    echo "wine prefix created in $(( $(date +%s%3N) - s )) ms"
fi
rm -rf "$PD"
# One wineserver (and service manager) for the whole test: quicker, and it
# does not boot again between calls, starting automatic services.
/usr/lib/wine/wineserver -p

# ---- the gateway with a windows principal capturing post-commit ----
gw_setup "$W/gw" && gw_configure || die "could not configure the gateway"
(umask 077 && printf '%s' 'Win-Dc-Secret-7' >"$W/win.secret")
"$GW_PWSYNC" principal create dc-win1 --kind windows --capture post-commit <"$W/win.secret" >/dev/null ||
    die "could not create the windows principal"
USED_PASSWORDS+=('Win-Dc-Secret-7')

# ---- install refuses, before it changes anything, what would stop capture ----
LSA='HKLM\SYSTEM\CurrentControlSet\Control\Lsa'
SVC='HKLM\SYSTEM\CurrentControlSet\Services\pwsync-agent'
# The first URI has nothing listening: the agent must fail over.
# Its messages (stderr) go with its output: the checks read them.
install_agent() {
    "$WINE" "$AGENT" install --gateway ldaps://127.0.0.1:1 --gateway ldaps://127.0.0.1:1636 --principal dc-win1 \
        --ca "$(winpath "$PWSYNC_TEST_CA")" --tls-check system <"$W/win.secret" 2>&1
}
packages() { "$WINE" reg query "$LSA" /v "Notification Packages" 2>/dev/null | grep 'Notification Packages'; }
set_packages() { wine_run reg add "$LSA" /v "Notification Packages" /t "$1" /d "$2" /f >/dev/null; }
# try_install NAME: install; its output in $W/install-NAME.out, its exit code in RC.
try_install() { install_agent >"$W/install-$1.out" 2>&1; RC=$?; }
said() { grep -q "$2" "$W/install-$1.out"; }
nothing_installed() {
    ! packages | grep -q pwsyncflt && ! "$WINE" reg query "$SVC" >/dev/null 2>&1 && [ ! -e "$PD/secret.bin" ] && [ ! -e "$PD/agent.conf" ]
}
set_packages REG_MULTI_SZ scecli
wine_run reg add "$LSA" /v RunAsPPL /t REG_DWORD /d 1 /f >/dev/null
try_install ppl
check "with LSA protection on (RunAsPPL = 1) install refuses (exit $RC)" [ "$RC" = 1 ]
check "  ... and says why" said ppl 'LSA protection is on'
check "  ... and that it changed nothing" said ppl 'Nothing was changed'
check "  ... which holds: no pwsyncflt in Notification Packages, no service, no secret or configuration written" nothing_installed
wine_run reg delete "$LSA" /v RunAsPPL /f >/dev/null
set_packages REG_SZ scecli
try_install sz
check "with Notification Packages a REG_SZ install refuses to rewrite it (exit $RC)" [ "$RC" = 1 ]
check "  ... and says why" said sz 'not a REG_MULTI_SZ'
check "  ... and leaves the value as it was" grep -Eq 'REG_SZ +scecli' <(packages)
set_packages REG_MULTI_SZ acmepkg
try_install replaced
check "with scecli gone from the list (another product replaced it) install goes on (exit $RC)" [ "$RC" = 0 ]
check "  ... and warns" said replaced 'warning: Notification Packages does not hold scecli'
check "  ... keeping that product's package" grep -q 'acmepkg.*pwsyncflt' <(packages)

# ---- install: service, notification package (kept next to others), event source ----
set_packages REG_MULTI_SZ scecli
install_agent >"$W/install.out"
check "install succeeds" [ $? = 0 ]
agent status >"$W/status-installed.out"
RC=$?
check "status right after install: not working (exit $RC): lsass has not loaded the package, restart the DC" \
    bash -c "[ $RC = 1 ] && grep -q '^capture: *NOT working' '$W/status-installed.out' &&
             grep -q 'has not loaded pwsyncflt since it was installed .*restart this domain controller' '$W/status-installed.out'"
wine_run reg query "$LSA" /v "Notification Packages" >"$W/reg.out"
check "install adds pwsyncflt to Notification Packages and keeps scecli" \
    bash -c "grep -q pwsyncflt '$W/reg.out' && grep -q scecli '$W/reg.out'"
check "install registers the service" bash -c "'$WINE' reg query 'HKLM\\SYSTEM\\CurrentControlSet\\Services\\pwsync-agent' 2>/dev/null | grep -q ' run'"
check "install makes the service start automatically" \
    bash -c "'$WINE' reg query 'HKLM\\SYSTEM\\CurrentControlSet\\Services\\pwsync-agent' /v Start 2>/dev/null | grep -q 0x2"
# wine's service manager starts automatic services whenever it boots: on
# demand only for the test, so that `once` runs alone.
wine_run sc config pwsync-agent start= demand >/dev/null
check "install registers the event source" \
    "$WINE" reg query 'HKLM\SYSTEM\CurrentControlSet\Services\EventLog\Application\pwsync' /v EventMessageFile
check "install puts the DLL where LSA loads it (System32)" test -f "$WINEPREFIX/drive_c/windows/system32/pwsyncflt.dll"
check "the principal's secret is stored sealed, not in clear" \
    bash -c "[ -s '$PD/secret.bin' ] && ! grep -qF 'Win-Dc-Secret-7' '$PD/secret.bin' '$PD/agent.conf'"

# ---- gateway down: changes are spooled and kept ----
newpw A1 'Wine-Cellar.81a'
newpw B1 'Wine-Barrel.82b'
printf 'alice\t%s\nbob\t%s\n' "$A1" "$B1" | wine_run "$WBIN/pwsync-lsa-sim.exe" "$DLL_W" >/dev/null
check "the notification package spooled two changes" [ "$(spool_count)" = 2 ]
agent status >"$W/status-loaded.out"
check "status once lsass loaded the package: loaded this boot, the last spool time, 2 waiting" \
    bash -c "grep -q '^loaded by lsass: *20.*(this boot)' '$W/status-loaded.out' &&
             grep -Eq '^last change spooled: +20[0-9]{2}-' '$W/status-loaded.out' && grep -q '^spool: *2 waiting' '$W/status-loaded.out'"
check "  ... and says the stopped service keeps changes from the gateway" \
    grep -q '^problem: the pwsync-agent service is stopped' "$W/status-loaded.out"
# Out of memory inside lsass (a test build whose every allocation fails):
# the call must return to lsass, never unwind into it.
newpw O1 'Wine-Oom-Cask.83c'
printf 'alice\t%s\n' "$O1" | wine_run "$WBIN/pwsync-lsa-sim.exe" "$(winpath "$WBIN/pwsyncflt-oom.dll")" >"$W/oom.out"
RC=$?
check "out of memory in the package: lsass's call returns normally (lsa-sim exit 0)" [ "$RC" = 0 ]
check "  ... after notifying the change" grep -q '1 change(s) notified' "$W/oom.out"
check "  ... which is not spooled" [ "$(spool_count)" = 2 ]
check "  ... and the event log says so" grep -q ':eventlog:ReportEventW.*out of memory or internal error' "$W/wine.stderr"
agent once >"$W/once1.out" 2>&1
RC=$?
check "with the gateway down, agent once says unreachable (exit 3)" [ "$RC" = 3 ]
check "  ... and both changes stay in the spool" [ "$(spool_count)" = 2 ]
if ldap_bind_ok "$PWSYNC_TEST_LDAP_URI" "$PWSYNC_TEST_LDAP_DN_ALICE" "$A1"; then bad "slapd has a password no gateway stored"
else ok "slapd does not have alice's new password yet"; fi
# A damaged entry, named like a real one and sorting first.
printf 'PWSQ\001\000garbage' >"$SPOOL/0000000000000001-00000001-00000001.pws"

# ---- gateway up: everything arrives, in order, the damaged entry set aside ----
gw_start || die "pwsyncd did not start"
s=$(date +%s%3N)
agent once >"$W/once2.out" 2>&1
RC=$?
echo "agent once delivered in $(( $(date +%s%3N) - s )) ms"
check "agent once exits 1: all sent but one entry set aside" [ "$RC" = 1 ]
check "the spool is empty" [ "$(spool_count)" = 0 ]
check "the damaged entry is in spool\\bad" test -f "$SPOOL/bad/0000000000000001-00000001-00000001.pws"
check "the damaged entry is reported in the agent's log" grep -q 'set aside in spool.bad' "$PD/agent.log"
check "Windows -> External: slapd accepts alice's new password" wait_for 10 ldap_bind_ok "$PWSYNC_TEST_LDAP_URI" "$PWSYNC_TEST_LDAP_DN_ALICE" "$A1"
check "Windows -> External: slapd accepts bob's new password" wait_for 10 ldap_bind_ok "$PWSYNC_TEST_LDAP_URI" "$PWSYNC_TEST_LDAP_DN_BOB" "$B1"
check "the agent failed over past the dead URI" grep -q 'stored by ldaps://127.0.0.1:1636' "$PD/agent.log"
check "the gateway audited the capture from dc-win1" bash -c "'$GW_PWSYNC' audit | grep -q dc-win1"

# ---- gateway up: a change goes straight through; a refused one is set aside ----
newpw C1 'Wine-Glass.83c'
newpw N1 'Wine-Nobody.84n'
printf 'carol\t%s\nnobody-here\t%s\n' "$C1" "$N1" | wine_run "$WBIN/pwsync-lsa-sim.exe" "$DLL_W" >/dev/null
agent once >"$W/once3.out" 2>&1
RC=$?
check "carol's change arrives while the gateway is up" wait_for 10 ldap_bind_ok "$PWSYNC_TEST_LDAP_URI" "$PWSYNC_TEST_LDAP_DN_CAROL" "$C1"
check "an account the gateway refuses is set aside in spool\\refused, not dropped" \
    bash -c "[ $RC = 1 ] && [ \$(ls '$SPOOL/refused' | wc -l) = 1 ]"

# ---- tls-check pinned: wine's LDAP client cannot run the agent's own
# certificate check, and the agent then refuses to send anything ----
newpw A2 'Wine-Press.87f'
printf 'alice\t%s\n' "$A2" | wine_run "$WBIN/pwsync-lsa-sim.exe" "$DLL_W" >/dev/null
sed -i 's/^tls-check = system/tls-check = pinned/' "$PD/agent.conf"
agent once >/dev/null 2>&1
RC=$?
check "with tls-check pinned and no certificate callback, nothing is sent (exit 3)" [ "$RC" = 3 ]
check "  ... the log says why" grep -q 'cannot check the certificate against the configured CA' "$PD/agent.log"
check "  ... and the change is still in the spool" [ "$(spool_count)" = 1 ]
sed -i 's/^tls-check = pinned/tls-check = system/' "$PD/agent.conf"
agent once >/dev/null 2>&1
check "  ... it goes out once tls-check is system" wait_for 10 ldap_bind_ok "$PWSYNC_TEST_LDAP_URI" "$PWSYNC_TEST_LDAP_DN_ALICE" "$A2"

# ---- max-age: a change older than the configured limit is set aside, logged ----
newpw B2 'Wine-Vintage.88g'
printf 'bob\t%s\n' "$B2" | wine_run "$WBIN/pwsync-lsa-sim.exe" "$DLL_W" >/dev/null
sed -i 's/^max-age = 0/max-age = 1/' "$PD/agent.conf"
sleep 2.2
agent once >/dev/null 2>&1
RC=$?
check "a change older than max-age is set aside in spool\\expired (exit 1)" \
    bash -c "[ $RC = 1 ] && [ \$(ls '$SPOOL/expired' | wc -l) = 1 ] && grep -q 'older than max-age' '$PD/agent.log'"
check "  ... and not sent: slapd keeps bob's previous password" \
    ldap_bind_ok "$PWSYNC_TEST_LDAP_URI" "$PWSYNC_TEST_LDAP_DN_BOB" "$B1"
sed -i 's/^max-age = 1/max-age = 0/' "$PD/agent.conf"

# ---- the service: started by (wine's) service manager, woken by the DLL ----
wine_run net start pwsync-agent >"$W/net.out"
check "the service starts under the service manager" bash -c "'$WINE' sc query pwsync-agent 2>/dev/null | grep -q RUNNING"
newpw C2 'Wine-Bottle.86e'
printf 'carol\t%s\n' "$C2" | wine_run "$WBIN/pwsync-lsa-sim.exe" "$DLL_W" >/dev/null
# Wine's service manager may be slow to start the service on a loaded machine.
if t=$(wait_for 30 ldap_bind_ok "$PWSYNC_TEST_LDAP_URI" "$PWSYNC_TEST_LDAP_DN_CAROL" "$C2"); then
    ok "the running service delivers a new change at once (${t} ms)"
else bad "the running service did not deliver carol's change"; fi
agent status >"$W/status-running.out"
RC=$?
check "status with the package loaded and the service running: capture working (exit $RC)" \
    bash -c "[ $RC = 0 ] && grep -q '^capture: *working' '$W/status-running.out' && ! grep -q '^problem' '$W/status-running.out'"
wine_run net stop pwsync-agent >>"$W/net.out"
check "the service stops" bash -c "'$WINE' sc query pwsync-agent 2>/dev/null | grep -q STOPPED"
# As on a DC that booted since without lsass loading the package: the
# volatile key the package makes at load gone (a reboot clears it), the
# load time older.
wine_run reg delete 'HKLM\SOFTWARE\pwsync\LoadedThisBoot' /f >/dev/null
wine_run reg add 'HKLM\SOFTWARE\pwsync' /v InstalledAt /t REG_QWORD /d 0x1 /f >/dev/null
wine_run reg add 'HKLM\SOFTWARE\pwsync' /v PackageLoadedAt /t REG_QWORD /d 0x2 /f >/dev/null
wine_run reg add "$LSA" /v RunAsPPL /t REG_DWORD /d 2 /f >/dev/null
agent status >"$W/status-stale.out"
RC=$?
check "status with the package last loaded before this boot and LSA protection since turned on: not working (exit $RC)" \
    bash -c "[ $RC = 1 ] && grep -q 'has not loaded pwsyncflt in this boot' '$W/status-stale.out' &&
             grep -q '^lsa protection: *ON' '$W/status-stale.out' && grep -q '^problem: LSA protection is on' '$W/status-stale.out'"
wine_run reg delete "$LSA" /v RunAsPPL /f >/dev/null

# ---- the pinned-CA check (wine's wldap32 cannot call it during TLS) ----
# RSA certificates made here: wine 8.0's crypt32 fails on ECDSA signatures
# whose r or s is shorter than 32 bytes (about 1 in 128 of the test
# environment's P-256 certificates), which real Windows verifies.
mkcert() {  # mkcert NAME CA-NAME|- SUBJECT
    if [[ $2 == - ]]; then
        openssl req -x509 -newkey rsa:2048 -nodes -keyout "$W/$1.key" -out "$W/$1.pem" -days 2 -subj "$3" \
            -addext basicConstraints=critical,CA:TRUE
    else
        openssl req -newkey rsa:2048 -nodes -keyout "$W/$1.key" -out "$W/$1.csr" -subj "$3" &&
            openssl x509 -req -in "$W/$1.csr" -CA "$W/$2.pem" -CAkey "$W/$2.key" -CAcreateserial -days 1 -out "$W/$1.pem"
    fi
} >/dev/null 2>&1
mkcert ca - "/CN=pwsync wine CA" && mkcert leaf ca /CN=127.0.0.1 &&
    mkcert impostor - "/CN=pwsync wine CA" && mkcert fake impostor /CN=127.0.0.1 || die "openssl could not make certificates"
check "check-cert accepts a certificate the pinned CA signed" \
    agent check-cert --ca "$(winpath "$W/ca.pem")" "$(winpath "$W/leaf.pem")"
check "check-cert refuses one signed by another CA of the same name" \
    bash -c "! '$WINE' '$AGENT' check-cert --ca '$(winpath "$W/ca.pem")' '$(winpath "$W/fake.pem")' 2>/dev/null"
check "check-cert refuses a self-signed certificate" \
    bash -c "! '$WINE' '$AGENT' check-cert --ca '$(winpath "$W/ca.pem")' '$(winpath "$W/impostor.pem")' 2>/dev/null"

# ---- no password anywhere it must not be ----
check "the set-aside entries were reported to the event log" grep -q ':eventlog:ReportEventW.*set aside' "$W/wine.stderr"

# ---- a failure inside the notification package: logged, the change goes on ----
rm -rf "$SPOOL"
newpw D1 'Wine-Lost.85d'
printf 'dave\t%s\n' "$D1" | wine_run "$WBIN/pwsync-lsa-sim.exe" "$DLL_W" >/dev/null
check "with no spool folder PasswordChangeNotify still returns success" [ $? = 0 ]
check "  ... and the event log says dave's change was not spooled" \
    grep -q ':eventlog:ReportEventW.*dave was not spooled' "$W/wine.stderr"
mkdir -p "$SPOOL"
harness_secrets "$W/leak-secrets" "${USED_PASSWORDS[@]}"
leaks=$(harness_leaks "$W/leak-secrets" "$PD" "$W/wine.stderr" "$W"/once*.out "$W"/install*.out "$W"/status*.out)
check "no password (UTF-8 or UTF-16LE) in the spool, the agent's files, its log or the event log output" [ "$leaks" = 0 ]

# ---- uninstall ----
agent uninstall >/dev/null
wine_run reg query "$LSA" /v "Notification Packages" >"$W/reg.out"
check "uninstall removes pwsyncflt and keeps scecli" bash -c "! grep -q pwsyncflt '$W/reg.out' && grep -q scecli '$W/reg.out'"
check "uninstall removes the service" bash -c "! '$WINE' reg query 'HKLM\\SYSTEM\\CurrentControlSet\\Services\\pwsync-agent' >/dev/null 2>&1"
agent status >"$W/status-uninstalled.out"
RC=$?
check "status after uninstall: not working (exit $RC), pwsyncflt not listed, no service, no times kept" \
    bash -c "[ $RC = 1 ] && grep -q 'pwsyncflt is not in Notification Packages' '$W/status-uninstalled.out' &&
             grep -q '^service pwsync-agent: *not installed' '$W/status-uninstalled.out' && grep -q '^installed: *never' '$W/status-uninstalled.out'"

gw_stop
restore_slapd
if ldap_bind_ok "$PWSYNC_TEST_LDAP_URI" "$PWSYNC_TEST_LDAP_DN_ALICE" "$PWSYNC_TEST_LDAP_PASSWORD_ALICE" &&
    ldap_bind_ok "$PWSYNC_TEST_LDAP_URI" "$PWSYNC_TEST_LDAP_DN_BOB" "$PWSYNC_TEST_LDAP_PASSWORD_BOB" &&
    ldap_bind_ok "$PWSYNC_TEST_LDAP_URI" "$PWSYNC_TEST_LDAP_DN_CAROL" "$PWSYNC_TEST_LDAP_PASSWORD_CAROL"; then
    ok "slapd has alice's, bob's and carol's original passwords again"
else bad "slapd passwords could not be restored for the tests after this one"; fi

echo "windows_wine: end to end $(( $(date +%s%3N) - t0 )) ms"
check "pwsyncd logged no crash of its own" harness_no_crash "$GW_WORK/pwsyncd.stderr"
harness_end
