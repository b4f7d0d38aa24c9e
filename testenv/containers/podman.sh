# Sourced: podman with the project's own settings, nothing system-wide.
# CONTAINERS_CONF and CONTAINERS_STORAGE_CONF point into PWSYNC_CONTAINERS_DIR
# (default: the test cache), so images, containers and their state live in
# the build tree. Settings verified on Debian 12's podman 4.3: runc (crun
# 1.8 fails on hybrid cgroups), cgroupfs, file events, ulimits within the
# host's hard limits. Containers use the host's network (the caller's
# namespace: testenv/netns), never podman's bridge.
: "${PWSYNC_CONTAINERS_DIR:?PWSYNC_CONTAINERS_DIR must name a folder for the podman state}"
pwsync_podman_setup() {
    local d=$PWSYNC_CONTAINERS_DIR nofile
    mkdir -p "$d/storage" "$d/run" "$d/tmp"
    nofile=$(ulimit -Hn)
    [[ $nofile == unlimited || $nofile -gt 65536 ]] && nofile=65536
    cat >"$d/containers.conf" <<CONF
[containers]
default_ulimits = ["nofile=$nofile:$nofile", "nproc=32768:32768"]
netns = "host"
log_driver = "k8s-file"
[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
events_logfile_path = "$d/run/events.log"
tmp_dir = "$d/tmp"
CONF
    cat >"$d/storage.conf" <<CONF
[storage]
driver = "overlay"
graphroot = "$d/storage"
runroot = "$d/run"
CONF
    export CONTAINERS_CONF=$d/containers.conf CONTAINERS_STORAGE_CONF=$d/storage.conf
}
pwsync_podman_setup
