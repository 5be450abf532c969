# migready validate: the test guest's files and domain on one compute host.
# Run as root with `sh -s` (POSIX sh). migready prepends ACTION, NAME, INSTANCES,
# SIZE_MIB, PATTERN, OFFSET, LENGTH and (for ACTION=source) XML_B64.
#   source   _base/NAME.raw (raw) + NAME/disk (qcow2 overlay on it), the pattern
#            written into the overlay, then the domain defined and started
#   dest     what Nova's pre-live-migration leaves: the base, and an empty overlay
#            of the same size on the same backing file
#   verify   records: domain state, completed job, pattern read back, overlay map
#   gone     records: the domain's state (it must not exist any more)
#   cleanup  destroy and undefine the domain, remove NAME/ and _base/NAME.raw
# Only names starting with migready-test- are ever touched.
LC_ALL=C
export LC_ALL
PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export PATH
case $NAME in
migready-test-*/* | */*) echo "refusing to touch $NAME" >&2; exit 2 ;;
migready-test-?*) ;;
*) echo "refusing to touch $NAME" >&2; exit 2 ;;
esac
dir=$INSTANCES/$NAME
base=$INSTANCES/_base/$NAME.raw
disk=$dir/disk
t=$(mktemp -d /tmp/migready-guest.XXXXXX) || exit 1
trap 'rm -rf "$t"' EXIT
b64() { if [ -s "$1" ]; then base64 -w0 <"$1"; else printf -- -; fi; }
fact() { # fact NAME COMMAND...
    n=$1; shift
    "$@" >"$t/out" 2>"$t/err" </dev/null
    rc=$?
    printf '@@MIGREADY@@ %s %s %s %s\n' "$n" "$rc" "$(b64 "$t/out")" "$(b64 "$t/err")"
}
disks() {
    # Directories made here belong to whoever owns the instances path (nova on a
    # Nova host): a root-owned _base would stop Nova from fetching images into it.
    for d in "$INSTANCES/_base" "$dir"; do
        [ -d "$d" ] || { mkdir -p "$d" && chown --reference="$INSTANCES" "$d"; } || return 1
    done &&
        { [ -e "$base" ] || qemu-img create -q -f raw "$base" "${SIZE_MIB}M"; } &&
        qemu-img create -q -f qcow2 -F raw -b "$base" "$disk" "${SIZE_MIB}M"
}
case $ACTION in
source)
    disks || exit 1
    qemu-io -c "write -P $PATTERN $OFFSET $LENGTH" "$disk" >/dev/null || exit 1
    printf '%s' "$XML_B64" | base64 -d >"$t/domain.xml" || exit 1
    virsh -q define "$t/domain.xml" >/dev/null || exit 1
    virsh -q start "$NAME" >/dev/null || exit 1
    ;;
dest)
    disks
    ;;
verify)
    fact state virsh -q domstate "$NAME"
    fact persistent virsh -q dominfo "$NAME"
    fact job virsh -q domjobinfo --completed "$NAME"
    fact pattern qemu-io -U -r -c "read -P $PATTERN $OFFSET $LENGTH" "$disk"
    fact map qemu-img map -U --output=json "$disk"
    ;;
gone)
    fact state virsh -q domstate "$NAME"
    ;;
cleanup)
    if virsh -q domstate "$NAME" >/dev/null 2>&1; then
        virsh -q destroy "$NAME" >/dev/null 2>&1
        virsh -q undefine "$NAME" >/dev/null 2>&1
    fi
    rm -rf "$dir" "$base"
    rmdir "$INSTANCES/_base" 2>/dev/null || true  # only if empty: Nova makes it again when it needs it
    if virsh -q domstate "$NAME" >/dev/null 2>&1 || [ -e "$dir" ] || [ -e "$base" ]; then
        echo "could not remove $NAME (domain, $dir or $base still there)" >&2
        exit 1
    fi
    ;;
*) echo "unknown ACTION $ACTION" >&2; exit 2 ;;
esac
