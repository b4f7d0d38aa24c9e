#!/bin/bash
# pwsyncd's OCI image (packaging/oci) as an administrator runs it: from the
# project's .deb, as its non-root user, read-only root file system, the
# store and the configuration as volumes, the master key and the other
# secrets as mounted files, no secret in the environment. Against the test
# directories: the three sync modes, a kill -9 of the container with a
# change queued (the store volume keeps it), the health check, SIGTERM, and
# no password in the container's output or the store.
# Needs PWSYNC_PWSYNCD_IMAGE (packaging/oci/build-image; testenv/test builds
# it from the package test's .deb) and a started environment in testenv/netns.
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
# shellcheck source=../../testenv/lib/harness.sh
source "$here/../../testenv/lib/harness.sh"
harness_begin image netns env bin gateway
image=${PWSYNC_PWSYNCD_IMAGE:-}
[[ -n $image ]] || die "PWSYNC_PWSYNCD_IMAGE names no image (build one: packaging/oci/build-image PWSYNC_DEB)"
export PWSYNC_CONTAINERS_DIR=${PWSYNC_CONTAINERS_DIR:-$PWSYNC_BIN/testenv-containers}
# shellcheck source=../../testenv/containers/podman.sh
source "$here/../../testenv/containers/podman.sh"
podman image exists "$image" || die "no image $image in $PWSYNC_CONTAINERS_DIR"

W=$(mktemp -d "$PWSYNC_TEST_TMP/image.XXXXXX")
chmod 0711 "$W"
ctr=pwsyncd-image-test-$$
uid=$(podman inspect -f '{{.Config.User}}' "$image" | cut -d: -f1)
cleanup() {
    podman rm -f -v --ignore -t 0 "$ctr" >/dev/null 2>&1
    rm -f "$PWSYNC_TEST_CPS_HOOK_DIR/hook"
    "$top/testenv/env" start-slapd "$PWSYNC_TESTENV_STATE" >/dev/null 2>&1 || true
    # The next test finds the users' first passwords again.
    "$top/testenv/env" reset-directories "$PWSYNC_TESTENV_STATE" >"$W/reset.log" 2>&1 || cat "$W/reset.log" >&2
    rm -rf "$W"
}
trap cleanup EXIT
# in_ctr CMD...: the admin CLI inside the running container (its store, its key).
in_ctr() { podman exec "$ctr" "$@"; }
mainframe_has() { grep -q "^$1 $(printf '%s' "$2" | sha256sum | cut -c1-16)\$" "$W/mainframe/mainframe.log" 2>/dev/null; }
answers() { ldapwhoami -x -o nettimeout=2 -H ldaps://127.0.0.1:1636 -D cn=ldap-agent -y "$W/gw/agent.secret" >/dev/null 2>&1; }
running() { [[ $(podman inspect -f '{{.State.Running}}' "$ctr" 2>/dev/null) == true ]]; }

# shellcheck disable=SC2034  # read by gateway.sh (its scratch folder until gw_setup)
GW_WORK=$W
if ! ldap_bind_ok "$PWSYNC_TEST_DC_URI" "$PWSYNC_TEST_DC_DN_ALICE" "$PWSYNC_TEST_DC_PASSWORD_ALICE" ||
   ! ldap_bind_ok "$PWSYNC_TEST_LDAP_URI" "$PWSYNC_TEST_LDAP_DN_ALICE" "$PWSYNC_TEST_LDAP_PASSWORD_ALICE"; then
    "$top/testenv/env" reset-directories "$PWSYNC_TESTENV_STATE" >"$W/reset.log" 2>&1 ||
        { cat "$W/reset.log" >&2; die "could not reset the directories"; }
fi

# ---- the store, made on the host by the admin CLI (the test's own build),
# then laid out as the image expects: /etc/pwsync (configuration, read-only),
# /var/lib/pwsync (store), /run/secrets/pwsync (key and secrets, read-only).
if ! gw_setup "$W/gw" || ! gw_configure; then die "could not configure the store"; fi
P=$GW_PWSYNC
$P adapter update ext-ldap --property ca=/etc/pwsync/ca.pem >/dev/null
mkdir -p "$W/etc" "$W/secrets" "$W/mainframe"
cp "$W/gw/mainframe.sh" "$W/mainframe/mainframe.sh"
$P adapter update mainframe --property program=/srv/mainframe/mainframe.sh >/dev/null
mv "$W/gw/store/master.key" "$W/secrets/master.key"
cp "$PWSYNC_TEST_GATEWAY_KEY" "$W/secrets/gateway.key"
cp "$PWSYNC_TEST_SVC_PASSWORD_FILE" "$W/secrets/ad.secret"
cp "$PWSYNC_TEST_CA" "$W/etc/ca.pem"
cp "$PWSYNC_TEST_GATEWAY_CERT" "$W/etc/gateway.pem"
cat >"$W/etc/pwsyncd.conf" <<CONF
store = /var/lib/pwsync
key = /run/secrets/pwsync/master.key
[listen]
uri = ldaps://127.0.0.1:1636 ldap://127.0.0.1:1389
cert = /etc/pwsync/gateway.pem
key = /run/secrets/pwsync/gateway.key
client-ca = /etc/pwsync/ca.pem
[directory]
uri = $PWSYNC_TEST_DC_URI
base = $PWSYNC_TEST_DC_BASE
domain = $PWSYNC_TEST_DC_DOMAIN
bind = simple
bind-dn = $PWSYNC_TEST_SVC_DN
bind-password-file = /run/secrets/pwsync/ad.secret
ca = /etc/pwsync/ca.pem
poll-interval = 5
[gateway]
pending-ttl = 30
[log]
level = debug
CONF
chown -R "$uid:$uid" "$W/gw/store" "$W/secrets" "$W/mainframe"
chmod 0700 "$W/secrets" && chmod 0600 "$W/secrets"/*
chmod 0755 "$W/etc" && chmod 0644 "$W/etc"/*

run_args=(--name "$ctr" --network=host --read-only --cap-drop=all --security-opt=no-new-privileges
          --health-interval=disable --add-host "$PWSYNC_TEST_DC_HOST:$PWSYNC_TEST_DC_IP"
          -v "$W/etc:/etc/pwsync:ro" -v "$W/gw/store:/var/lib/pwsync" -v "$W/secrets:/run/secrets/pwsync:ro"
          -v "$W/mainframe:/srv/mainframe")
start_ctr() {
    for _ in $(seq 1 150); do
        answers && return 0
        running || break
        sleep 0.1
    done
    podman logs "$ctr" 2>&1 | tail -n 20 >&2
    return 1
}
t0=$(date +%s%3N)
# podman 4.3 asks systemd for a health check timer even with the interval
# disabled, and says so on stderr: kept apart from the test's output.
podman run -d "${run_args[@]}" "$image" >/dev/null 2>>"$W/podman.err" || { cat "$W/podman.err" >&2; die "podman run failed"; }
if start_ctr; then ok "the gateway in its container answers ($(( $(date +%s%3N) - t0 )) ms after podman run)"
else die "the gateway in its container did not start"; fi

# ---- what the container is
# podman top's huser is a host user name when the host has one for that uid
# (dnsmasq-base, which podman's dnsname plugin pulls in, takes 999 on a
# fresh machine): compared as a number.
running_uid() {
    local u
    u=$(podman top "$ctr" huser args | awk '/pwsyncd/ { print $1 }' | head -n1)
    if [[ $u =~ ^[0-9]+$ ]]; then echo "$u"; else getent passwd "$u" | cut -d: -f3; fi
}
check "it runs as the image's user ($uid), not root" [ "$uid" != 0 -a "$(running_uid)" = "$uid" ]
check "its root file system is read-only" [ "$(podman inspect -f '{{.HostConfig.ReadonlyRootfs}}' "$ctr")" = true ]
check "no secret in its environment" bash -c "! podman inspect -f '{{.Config.Env}}' '$ctr' | grep -qiE 'pass|secret|key'"
check "even root in it cannot write its root file system" bash -c "! podman exec --user 0 '$ctr' touch /usr/lib/x 2>/dev/null"
check "the health check passes (pwsyncd --health-check)" podman healthcheck run "$ctr"

# ---- Windows -> External: a user's own change in AD, captured by the DC's hook
newpw A1 'Harbor-Light.51x'
if ad_user_change alice "$PWSYNC_TEST_DC_PASSWORD_ALICE" "$A1" >/dev/null 2>&1; then
    if t=$(wait_for 10 ldap_bind_ok "$PWSYNC_TEST_LDAP_URI" "$PWSYNC_TEST_LDAP_DN_ALICE" "$A1"); then
        ok "Windows -> External: alice's change in AD reaches slapd through the container (${t} ms)"
    else bad "Windows -> External: slapd did not get alice's new password"; fi
    check "  ... and the exec adapter's program in a volume got it" wait_for 5 mainframe_has ALICE "$A1"
else bad "alice could not change her password in AD"; fi

# ---- External -> Windows, full
newpw B1 'Harbor-Tide.62y'
gw_passwd bob "$PWSYNC_TEST_LDAP_PASSWORD_BOB" "$B1"
check "External -> Windows full: ldappasswd to the container succeeds" [ "$RC" = 0 ]
check "  ... AD accepts bob's new password" ldap_bind_ok "$PWSYNC_TEST_DC_URI" "$PWSYNC_TEST_DC_DN_BOB" "$B1"

# ---- External -> Windows, partial, switched by the CLI inside the container
in_ctr pwsync adapter update ext-ldap --change-windows-password=no >/dev/null
newpw C1 'Harbor-Fog.73z'
gw_passwd carol "$PWSYNC_TEST_LDAP_PASSWORD_CAROL" "$C1"
check "External -> Windows partial: accepted" [ "$RC" = 0 ]
check "  ... the store has it (pwsync in the container)" bash -c "podman exec '$ctr' pwsync mapping show --app LINUX-LDAP --windows 'TEST\\carol' --reveal --json | grep -qF '\"password\": \"$C1\"'"
check "  ... AD does not" ldap_bind_ok "$PWSYNC_TEST_DC_URI" "$PWSYNC_TEST_DC_DN_CAROL" "$PWSYNC_TEST_DC_PASSWORD_CAROL"
in_ctr pwsync adapter update ext-ldap --change-windows-password=yes >/dev/null

# ---- kill -9 of the container with a change queued: the volume keeps it
"$top/testenv/env" stop-slapd "$PWSYNC_TESTENV_STATE" >/dev/null
newpw C2 'Harbor-Rain.84w'
ad_user_change carol "$PWSYNC_TEST_DC_PASSWORD_CAROL" "$C2" >/dev/null 2>&1 || bad "carol could not change her password in AD"
check "with slapd down, carol's change is queued" wait_for 15 bash -c "podman exec '$ctr' pwsync queue list --json | grep -q '\"external\": \"carol\"'"
podman kill -s KILL "$ctr" >/dev/null
podman wait "$ctr" >/dev/null 2>&1
podman logs "$ctr" >"$W/run1.log" 2>&1
t0=$(date +%s%3N)
if ! podman start "$ctr" >/dev/null 2>>"$W/podman.err" || ! start_ctr; then bad "the container did not start again after kill -9"; fi
ok "restarted after kill -9 in $(( $(date +%s%3N) - t0 )) ms"
"$top/testenv/env" start-slapd "$PWSYNC_TESTENV_STATE" >/dev/null
if t=$(wait_for 20 ldap_bind_ok "$PWSYNC_TEST_LDAP_URI" "$PWSYNC_TEST_LDAP_DN_CAROL" "$C2"); then
    ok "  ... the queued change arrives once slapd is back (${t} ms)"
else bad "the change queued before kill -9 did not arrive"; fi

# ---- a stopped listener fails the health check; SIGTERM ends it cleanly
t0=$(date +%s%3N)
podman stop -t 30 "$ctr" >/dev/null 2>>"$W/podman.err"
check "podman stop (SIGTERM): exit code 0 ($(( $(date +%s%3N) - t0 )) ms)" [ "$(podman inspect -f '{{.State.ExitCode}}' "$ctr")" = 0 ]
podman logs "$ctr" >"$W/run2.log" 2>&1
check "  ... pwsyncd finished its work in flight" grep -q 'signal TERM: finishing work in flight' "$W/run2.log"
podman run --rm --network=host -v "$W/etc:/etc/pwsync:ro" -v "$W/secrets:/run/secrets/pwsync:ro" \
    --entrypoint /usr/sbin/pwsyncd "$image" --health-check >"$W/probe.out" 2>&1 && RC=0 || RC=$?
check "with the gateway stopped the health check fails (exit $RC), saying why" \
    bash -c "[ $RC = 1 ] && grep -q 'unhealthy: ldaps://127.0.0.1:1636: WhoAmI' '$W/probe.out'"

# ---- no password in what the container wrote or the store holds
harness_secrets "$W/leak-secrets" "${USED_PASSWORDS[@]}" "$PWSYNC_TEST_LDAP_ROOTPW" "Dc1-Capture-Secret-1" "Ldap-Agent-Secret-1"
leaks=$(harness_leaks "$W/leak-secrets" "$W/run1.log" "$W/run2.log" "$W/gw/store")
check "no password in the container's output or the store ($leaks found)" [ "$leaks" = 0 ]
check "no crash in the container's output" harness_no_crash "$W/run1.log" "$W/run2.log"
harness_end
