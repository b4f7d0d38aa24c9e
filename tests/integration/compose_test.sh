#!/bin/bash
# packaging/compose/compose.yaml as a user runs it with Debian's
# podman-compose: up, the demo's three modes, checked again from outside
# (the published gateway port, the directories, the store), the demo run a
# second time against the running services, then down. Runs in
# testenv/netns: the project's bridge network and its published port live
# in the test's namespace. Needs PWSYNC_PWSYNCD_IMAGE and PWSYNC_DEMO_IMAGE
# (testenv/test builds both; they need apt, outside the namespace).
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=../../testenv/lib/harness.sh
source "$here/../../testenv/lib/harness.sh"
harness_begin compose netns bin
compose_dir=$(cd "$here/../../packaging/compose" && pwd)
: "${PWSYNC_PWSYNCD_IMAGE:?names the pwsyncd image (packaging/oci/build-image)}"
: "${PWSYNC_DEMO_IMAGE:?names the compose demo image (podman build -f packaging/compose/Containerfile.demo)}"
export PWSYNCD_IMAGE=$PWSYNC_PWSYNCD_IMAGE
export PWSYNC_CONTAINERS_DIR=${PWSYNC_CONTAINERS_DIR:-$PWSYNC_BIN/testenv-containers}
# shellcheck source=../../testenv/containers/podman.sh
source "$here/../../testenv/containers/podman.sh"
for image in "$PWSYNCD_IMAGE" "$PWSYNC_DEMO_IMAGE"; do
    podman image exists "$image" || die "no image $image in $PWSYNC_CONTAINERS_DIR"
done

W=$(mktemp -d "${PWSYNC_TEST_TMP:-/tmp}/compose.XXXXXX")
project=pwsync-compose-$$
compose() { podman-compose -p "$project" -f "$compose_dir/compose.yaml" "$@" >>"$W/compose.log" 2>&1; }
cleanup() {
    # -v: anonymous volumes too (down -v of podman-compose 1.0.3 removes the named ones only).
    podman ps -aq --filter "label=io.podman.compose.project=$project" | xargs -r podman rm -f -v -t 0 >/dev/null 2>&1
    compose down -v
    podman network rm -f "${project}_default" >/dev/null 2>&1
    rm -rf "$W"
}
trap cleanup EXIT
state() { podman inspect -f "{{.State.$2}}" "${project}_$1_1" 2>/dev/null; }
# wait_exit SERVICE SECONDS: until its container has exited.
wait_exit() {
    local i
    for ((i = 0; i < $2; i++)); do
        [[ $(state "$1" Status) == exited ]] && return 0
        sleep 1
    done
    return 1
}

t0=$SECONDS
compose up -d || { cat "$W/compose.log" >&2; die "podman-compose up failed"; }
if wait_exit demo 300; then ok "podman-compose up: the demo finished in $((SECONDS - t0)) s"
else bad "the demo did not finish within 300 s"; fi
podman logs "${project}_demo_1" >"$W/demo1.log" 2>&1
sed 's/^/    /' "$W/demo1.log"
check "the demo exits 0" [ "$(state demo ExitCode)" = 0 ]
for mode in "Windows -> External: alice" "External -> Windows, full: LINUX-LDAP reported bob" \
            "External -> Windows, partial: HR-PORTAL reported carol"; do
    check "demo: $mode" grep -q "^\[demo\] $mode" "$W/demo1.log"
done

# ---- from outside the demo: its secrets volume says what each password is now
sec=$(podman volume inspect -f '{{.Mountpoint}}' "${project}_demo-secrets") || die "no demo-secrets volume"
export LDAPTLS_CACERT=$sec/pki/ca.pem LDAPTLS_REQCERT=demand LDAPRC=/dev/null LDAPCONF=/dev/null
check "the gateway answers on its published port (127.0.0.1:1636, its certificate verified)" \
    ldapwhoami -x -o nettimeout=5 -H ldaps://127.0.0.1:1636 -D cn=ldap-agent -y "$sec/ldap-agent.pw"
# in_net CMD...: a tool of the demo image on the project's network.
in_net() {
    podman run --rm --network "${project}_default" -v "${project}_demo-secrets:/demo-secrets:ro" \
        -e LDAPTLS_CACERT=/demo-secrets/pki/ca.pem --entrypoint "$1" "$PWSYNC_DEMO_IMAGE" "${@:2}" >/dev/null 2>&1
}
bind_as() { in_net ldapsearch -x -o nettimeout=5 -H "ldaps://$1" -D "$2" -y "/demo-secrets/$3" -b "" -s base 1.1; }
check "OpenLDAP takes alice's password from AD" bind_as ext uid=alice,ou=people,dc=ext,dc=example alice.pw
check "AD takes alice's new password" bind_as dc CN=alice,CN=Users,DC=demo,DC=example alice.pw
check "AD takes bob's password from LINUX-LDAP" bind_as dc CN=bob,CN=Users,DC=demo,DC=example bob.pw
check "AD still has carol's own password (partial)" bind_as dc CN=carol,CN=Users,DC=demo,DC=example carol.pw
podman exec "${project}_gw_1" pwsync mapping show --app HR-PORTAL --windows 'DEMO\carol' --reveal --json >"$W/carol.json" 2>&1
check "the store has carol's HR-PORTAL password (pwsync in the gw container)" \
    python3 -c 'import json,sys; sys.exit(json.load(open(sys.argv[1]))["password"] != open(sys.argv[2]).read())' "$W/carol.json" "$sec/carol.hr"
rm -f "$W/carol.json"
check "the gateway runs read-only as uid 999" bash -c "[ \"\$(podman inspect -f '{{.HostConfig.ReadonlyRootfs}} {{.Config.User}}' '${project}_gw_1')\" = 'true 999:999' ]"

# ---- the demo again, against the running services (and their volumes)
t0=$SECONDS
podman start -a "${project}_demo_1" >"$W/demo2.log" 2>&1
check "a second demo run succeeds too ($((SECONDS - t0)) s)" bash -c "[ \"\$(podman inspect -f '{{.State.ExitCode}}' '${project}_demo_1')\" = 0 ] && grep -q 'all three modes shown' '$W/demo2.log'"

# ---- no password in any service's output or the store
for s in init dc ext setup gw demo; do podman logs "${project}_${s}_1" >"$W/$s.log" 2>&1; done
(umask 077 && for f in "$sec"/*.pw "$sec"/carol.hr; do cat "$f"; echo; done >"$W/secrets")
store=$(podman volume inspect -f '{{.Mountpoint}}' "${project}_store")
leaks=$(harness_leaks "$W/secrets" "$W"/*.log "$store")
check "no password in the services' output, podman-compose's or the store ($leaks found)" [ "$leaks" = 0 ]
check "no crash in the services' output" harness_no_crash "$W"/*.log
rm -f "$W/secrets"
harness_end
