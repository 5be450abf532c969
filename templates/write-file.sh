# migready write-file: replace one file atomically, as root. Run as
#   sh -c "<this script>" migready-write PATH EXPECTED_SHA256 MODE [BACKUP]
# with the new content on stdin.
#   EXPECTED_SHA256  sha256 of the content the change was planned from, or "-"
#                    when the file must not exist yet (MODE is then its mode).
#   MODE "delete"    remove PATH instead (rollback of a file migready created).
#   BACKUP "no"      no backup (a rollback restoring the original content).
# Refuses (exit 3) when the file changed since it was read. Keeps owner, mode
# and SELinux label, leaves a backup PATH.migready-YYYYmmddHHMMSS.bak next to
# it, writes a temp file in the same directory and renames it over PATH.
# Prints the backup's path.
set -eu
p=$1 want=$2 mode=$3 backup=${4:-yes}
d=$(dirname "$p") b=$(basename "$p")
if [ "$want" = "-" ]; then
    if [ -e "$p" ]; then echo "changed since read: $p exists now" >&2; exit 3; fi
    mkdir -p "$d"
else
    have=$(sha256sum "$p" 2>/dev/null | cut -d' ' -f1) || have=missing
    if [ "$have" != "$want" ]; then echo "changed since read: $p (sha256 $have, planned from $want)" >&2; exit 3; fi
fi
if [ "$mode" = "delete" ]; then rm -f "$p"; exit 0; fi
tmp=$(mktemp "$d/.$b.migready.XXXXXX")
trap 'rm -f "$tmp"' EXIT
cat >"$tmp"
if [ "$want" = "-" ]; then
    chmod "$mode" "$tmp"
else
    chown --reference="$p" "$tmp"
    chmod --reference="$p" "$tmp"
    if command -v chcon >/dev/null 2>&1; then chcon --reference="$p" "$tmp" 2>/dev/null || true; fi
    if [ "$backup" != no ]; then
        bak="$p.migready-$(date +%Y%m%d%H%M%S).bak"
        [ ! -e "$bak" ] || bak="$bak.$$"
        cp -p "$p" "$bak"
        echo "$bak"
    fi
fi
mv -f "$tmp" "$p"
trap - EXIT
