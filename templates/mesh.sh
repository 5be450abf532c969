# migready mesh probe: run on a compute host as root with `sh -s` (POSIX sh).
# migready prepends MESH_TIMEOUT, MESH_LIBVIRT_PORT, MESH_PEERS (quoted; one line per
# peer: NAME PORT...) and MESH_TLS_PEERS (names whose transport is tls: probed over
# qemu+tls://NAME/system) to this script. From this host, to every peer, at most
# MESH_PARALLEL (default 48) probes at a time:
#   resolve:NAME        getent ahosts -- NAME
#   qemu-tcp:NAME       virsh -c qemu+tcp://NAME:PORT/system hostname (qemu+tls for TLS peers)
#   port:NAME:PORT      nc -z -v -w TIMEOUT -- NAME PORT (refused = reachable)
# A name is always one word ("$peer"), after `--` where it is an operand, so that
# no name can become an option (migready refuses such names anyway).
# then prints one record per probe, as templates/facts.sh does:
#   @@MIGREADY@@ <name> <exit status> <stdout in base64 or -> <stderr in base64 or ->
# Where python3 is found (every Nova compute host has it) the probes run in one
# Python process instead (templates/mesh.py, inserted below by migready); this sh
# engine is the fallback, and MESH_ENGINE=sh forces it.
# Nothing here changes the host.
LC_ALL=C
export LC_ALL
PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export PATH
if [ "${MESH_ENGINE:-auto}" != sh ] && command -v python3 >/dev/null 2>&1; then
    export MESH_TIMEOUT MESH_LIBVIRT_PORT MESH_PEERS MESH_TLS_PEERS MESH_PARALLEL
    # If Python fails (non-zero exit), the sh engine below runs; its records win.
    python3 - <<'MIGREADY_MESH_PY' && exit 0
@@MESH_PY@@
MIGREADY_MESH_PY
fi
t=$(mktemp -d /tmp/migready-mesh.XXXXXX) || exit 1
trap 'rm -rf "$t"' EXIT
printf '%s\n' "$MESH_PEERS" >"$t/peers"

b64() { if [ -s "$1" ]; then base64 -w0 <"$1"; else printf -- -; fi; }
key() { printf '%s' "$1" | tr ':/' '__'; }
# At most MESH_PARALLEL probes at once (POSIX sh has no `wait -n`: in batches).
running=0
probe() { # probe NAME COMMAND...: runs in the background, result in $t/KEY.*
    k=$(key "$1"); shift
    ( "$@" >"$t/$k.out" 2>"$t/$k.err" </dev/null; echo $? >"$t/$k.rc" ) &
    running=$((running + 1))
    if [ "$running" -ge "${MESH_PARALLEL:-48}" ]; then wait; running=0; fi
}
record() {
    k=$(key "$1")
    printf '@@MIGREADY@@ %s %s %s %s\n' "$1" "$(cat "$t/$k.rc" 2>/dev/null || echo 255)" "$(b64 "$t/$k.out")" "$(b64 "$t/$k.err")"
}
nc_missing() { echo "nc (netcat) is not installed on this host" >&2; return 127; }
if command -v nc >/dev/null 2>&1; then nc=nc; else nc=nc_missing; fi

while read -r peer ports; do
    [ -n "$peer" ] || continue
    probe "resolve:$peer" getent ahosts -- "$peer"
    case " ${MESH_TLS_PEERS:-} " in
    *" $peer "*) uri="qemu+tls://$peer/system" ;;
    *) uri="qemu+tcp://$peer:$MESH_LIBVIRT_PORT/system" ;;
    esac
    probe "qemu-tcp:$peer" timeout "$MESH_TIMEOUT" virsh -c "$uri" hostname
    for p in $ports; do
        probe "port:$peer:$p" timeout $((MESH_TIMEOUT + 1)) $nc -z -v -w "$MESH_TIMEOUT" -- "$peer" "$p"
    done
done <"$t/peers"
wait
while read -r peer ports; do
    [ -n "$peer" ] || continue
    record "resolve:$peer"
    record "qemu-tcp:$peer"
    for p in $ports; do record "port:$peer:$p"; done
done <"$t/peers"
