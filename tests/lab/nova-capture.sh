#!/usr/bin/env bash
# Capture what the lab's cloud says about a server, its last migration and the computes,
# as fixtures for unit tests (tests/fixtures/nova/).
#
#   tests/lab/nova-capture.sh DIR SERVER HOST...
#
# Run on the control node with the lab up (same MIGREADY_LAB_ID). DIR gets:
#   cli-*.json   the openstack CLI's JSON (server show, compute service list, hypervisor
#                list and show HOST, server migration list, server event list/show of the
#                last action)
#   api-*.json   raw Nova API GET bodies, at microversion 2.93 (Zed's latest) and, where the
#                shape differs, without a microversion header (2.1)
#   log-HOST.txt the nova-compute.log lines about SERVER on HOST since its last migration
#                started (the whole log's ERROR lines for that time, too)
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
dir=${1:?usage: nova-capture.sh DIR SERVER HOST...}
server=${2:?usage: nova-capture.sh DIR SERVER HOST...}
shift 2
lab() { "$here/lab.sh" "$@"; }
ctl=$(cat "${MIGREADY_LAB_STATE:-/var/tmp/migready-lab${MIGREADY_LAB_ID:+-$MIGREADY_LAB_ID}}/nova/controller")
mkdir -p "$dir"
chmod 755 "$dir"

# One SSH session on the controller: every capture into a directory there, sent back as tar.
lab ssh "$ctl" bash -s -- "$server" "$@" <<'EOF' | tar -x -C "$dir"
set -euo pipefail
server=$1; shift
out=$(mktemp -d); cd "$out"
get() { python3 /usr/local/lib/migready-lab/cloud.py get "$@"; }
id=$(openstack server show "$server" -f value -c id)
openstack server show "$server" -f json >cli-server-show.json
openstack compute service list -f json >cli-compute-service-list.json
openstack hypervisor list -f json >cli-hypervisor-list.json
for h in "$@"; do openstack hypervisor show "$h" -f json >"cli-hypervisor-show-$h.json"; done
openstack --os-compute-api-version 2.80 server migration list --server "$server" -f json >cli-server-migration-list.json
openstack server event list "$server" -f json >cli-server-event-list.json
req=$(openstack server event list "$server" -f value -c "Request ID" | head -1)
openstack --os-compute-api-version 2.51 server event show "$server" "$req" -f json >cli-server-event-show.json
get /os-services 2.93 >api-os-services.2.93.json
get /os-services >api-os-services.2.1.json
get /os-hypervisors/detail 2.93 >api-os-hypervisors-detail.2.93.json
get /os-hypervisors/detail >api-os-hypervisors-detail.2.1.json
get "/servers/$id" 2.93 >api-server.2.93.json
get "/servers/$id/migrations" 2.93 >api-server-migrations.2.93.json
get "/os-migrations?instance_uuid=$id" 2.93 >api-os-migrations.2.93.json
get "/servers/$id/os-instance-actions" 2.93 >api-os-instance-actions.2.93.json
get "/servers/$id/os-instance-actions/$req" 2.93 >api-os-instance-action.2.93.json
python3 -c 'import json,sys; m=json.load(open("api-os-migrations.2.93.json"))["migrations"]; print(max(x["created_at"] for x in m).replace("T", " ")[:19] if m else "")' >since
echo "$id" >server-id
tar -c .
cd /; rm -rf "$out"
EOF

since=$(cat "$dir/since") id=$(cat "$dir/server-id")
rm -f "$dir/since" "$dir/server-id"
for h in "$@"; do
    # oslo.log lines start with "YYYY-MM-DD HH:MM:SS.mmm"; keep those of the migration's time.
    lab ssh "$h" awk -v since="'$since'" -v id="$id" \
        "'substr(\$0, 1, 19) >= since && (index(\$0, id) || / ERROR /)'" /var/log/nova/nova-compute.log \
        >"$dir/log-$h.txt"
done
echo "nova-capture: $dir ($(ls "$dir" | wc -l) files; migration since $since)" >&2
