#!/bin/bash
# Configure the lab's Zed controller (run inside it by tests/lab/lab.sh up, as root):
#
#   setup.sh core              databases, RabbitMQ, Keystone (bootstrap, users, services,
#                              endpoints), every service's configuration, the db syncs,
#                              cell_v2; starts the APIs, conductor and scheduler
#   setup.sh ready             until they answer (Neutron warmed up)
#   setup.sh content           the guest image (64 MiB blank qcow2) and the tiny flavor
#   setup.sh computes NAME...  until those computes are up, then cell_v2 discover_hosts
#
# Reads /etc/migready-lab/cloud.env. Progress lines go to stderr.
set -euo pipefail
. /etc/migready-lab/cloud.env
lib=/usr/local/lib/migready-lab
t0=$SECONDS
say() { echo "controller: $* ($((SECONDS - t0)) s)" >&2; }
as() { local u=$1; shift; su -s /bin/sh -c "$*" "$u"; }
# The tools' own chatter (alembic, eventlet warnings) goes to a log, shown on failure.
setup_log=/var/log/migready-lab-setup.log
quiet() {
    "$@" >>"$setup_log" 2>&1 && return 0
    say "failed: $* (last lines of $setup_log:)"
    tail -n 20 "$setup_log" >&2
    return 1
}

auth_block() { # USER: a [keystone_authtoken]-style block of options
    cat <<EOF
auth_url = http://$CTL_ADDR:5000/v3
auth_type = password
project_domain_name = Default
user_domain_name = Default
project_name = service
username = $1
password = $SERVICE_PASS
region_name = RegionOne
EOF
}

configure() {
    local db="mysql+pymysql://%s:$DB_PASS@127.0.0.1/%s"
    local rabbit="rabbit://openstack:$RABBIT_PASS@$CTL_ADDR:5672/"

    # keystone-manage runs as root and as keystone, at once: its log must be keystone's.
    install -d -o keystone -g keystone /var/log/keystone
    touch /var/log/keystone/keystone.log
    chown keystone:keystone /var/log/keystone/keystone.log

    crudini --merge /etc/keystone/keystone.conf <<EOF
[database]
connection = $(printf "$db" keystone keystone)
[token]
provider = fernet
EOF
    # Keystone's uWSGI loads AppArmor (this kernel has none: aa_change_profile fails
    # and uWSGI exits). Two processes per API, one worker per service: 2 CPUs.
    sed -i -e 's/^plugins = python3,apparmor/plugins = python3/' -e '/^apparmor-profile/d' \
        -e 's/^processes = .*/processes = 2/' /etc/keystone/keystone-uwsgi.ini
    sed -i -e 's/^processes = .*/processes = 2/' /etc/nova/nova-api-uwsgi.ini
    sed -i -e 's/^processes = .*/processes = 1/' /etc/placement/placement-api-uwsgi.ini \
        /etc/neutron/neutron-api-uwsgi.ini

    crudini --merge /etc/placement/placement.conf <<EOF
[placement_database]
connection = $(printf "$db" placement placement)
[api]
auth_strategy = keystone
[keystone_authtoken]
www_authenticate_uri = http://$CTL_ADDR:5000
$(auth_block placement)
EOF

    crudini --merge /etc/glance/glance-api.conf <<EOF
[DEFAULT]
workers = 1
[database]
connection = $(printf "$db" glance glance)
[keystone_authtoken]
www_authenticate_uri = http://$CTL_ADDR:5000
$(auth_block glance)
[paste_deploy]
flavor = keystone
[glance_store]
stores = file,http
default_store = file
filesystem_store_datadir = /var/lib/glance/images
EOF

    crudini --merge /etc/neutron/neutron.conf <<EOF
[DEFAULT]
core_plugin = ml2
service_plugins =
auth_strategy = keystone
notify_nova_on_port_status_changes = false
notify_nova_on_port_data_changes = false
transport_url = $rabbit
api_workers = 1
rpc_workers = 0
[database]
connection = $(printf "$db" neutron neutron)
[keystone_authtoken]
www_authenticate_uri = http://$CTL_ADDR:5000
$(auth_block neutron)
[nova]
$(auth_block nova)
EOF
    crudini --merge /etc/neutron/plugins/ml2/ml2_conf.ini <<EOF
[ml2]
type_drivers = flat
tenant_network_types =
mechanism_drivers = openvswitch
extension_drivers = port_security
EOF

    crudini --merge /etc/nova/nova.conf <<EOF
[DEFAULT]
my_ip = $CTL_ADDR
transport_url = $rabbit
enabled_apis = osapi_compute
rpc_response_timeout = 180
[api]
auth_strategy = keystone
[api_database]
connection = $(printf "$db" nova nova_api)
[database]
connection = $(printf "$db" nova nova)
[keystone_authtoken]
www_authenticate_uri = http://$CTL_ADDR:5000
$(auth_block nova)
[service_user]
send_service_user_token = true
$(auth_block nova)
[placement]
$(auth_block placement)
[neutron]
$(auth_block neutron)
service_metadata_proxy = false
[cinder]
os_region_name = RegionOne
[conductor]
workers = 1
[scheduler]
workers = 1
discover_hosts_in_cells_interval = 30
[vnc]
enabled = false
[spice]
enabled = false
EOF
}

databases() {
    local d u
    {
        for d in keystone:keystone placement:placement glance:glance neutron:neutron \
            nova_api:nova nova:nova nova_cell0:nova; do
            echo "CREATE DATABASE ${d%%:*};"
        done
        for u in keystone placement glance neutron nova; do
            echo "CREATE USER '$u'@'127.0.0.1' IDENTIFIED BY '$DB_PASS';"
        done
        for d in keystone:keystone placement:placement glance:glance neutron:neutron \
            nova_api:nova nova:nova nova_cell0:nova; do
            echo "GRANT ALL PRIVILEGES ON ${d%%:*}.* TO '${d##*:}'@'127.0.0.1';"
        done
    } | mysql
}

core() {
    say "waiting for MariaDB (started at boot)"
    for _ in $(seq 1 120); do systemctl is-active -q mariadb && break; sleep 0.5; done
    configure
    databases
    say "databases created, configuration written"
    # Nothing below waits for what it does not need: the db syncs need only MariaDB, and
    # each API starts as soon as its database is ready; Keystone meanwhile.
    local -a jobs=()
    (
        rabbitmqctl -q await_startup
        rabbitmqctl -q add_user openstack "$RABBIT_PASS" >/dev/null
        rabbitmqctl -q set_permissions openstack '.*' '.*' '.*'
        say "RabbitMQ: user openstack"
    ) & jobs+=($!)
    (
        quiet as placement placement-manage db sync
        systemctl enable -q --now --no-block placement-api
        say "placement: db synced, started"
    ) & jobs+=($!)
    (
        quiet as glance glance-manage db_sync
        systemctl enable -q --now --no-block glance-api
        say "glance: db synced, started"
    ) & jobs+=($!)
    (
        quiet as neutron neutron-db-manage --config-file /etc/neutron/neutron.conf \
            --config-file /etc/neutron/plugins/ml2/ml2_conf.ini upgrade heads
        systemctl enable -q --now --no-block neutron-api
        say "neutron: db synced, started"
    ) & jobs+=($!)
    local nova
    (
        quiet as nova nova-manage api_db sync
        quiet as nova nova-manage cell_v2 map_cell0
        quiet as nova nova-manage cell_v2 create_cell --name=cell1
        quiet as nova nova-manage db sync
        say "nova: api, cell0 and cell1 databases synced, cells mapped"
    ) & nova=$!

    (
        quiet as keystone keystone-manage db_sync
        systemctl enable -q --now --no-block keystone
    ) &
    quiet keystone-manage fernet_setup --keystone-user keystone --keystone-group keystone
    quiet keystone-manage credential_setup --keystone-user keystone --keystone-group keystone
    wait $! || { say "keystone: db sync failed"; exit 1; }
    quiet as keystone keystone-manage bootstrap --bootstrap-password "'$ADMIN_PASS'" \
        --bootstrap-admin-url "http://$CTL_ADDR:5000/v3/" \
        --bootstrap-internal-url "http://$CTL_ADDR:5000/v3/" \
        --bootstrap-public-url "http://$CTL_ADDR:5000/v3/" --bootstrap-region-id RegionOne
    for _ in $(seq 1 240); do
        curl -fsS -o /dev/null "http://$CTL_ADDR:5000/v3" 2>/dev/null && break
        sleep 0.5
    done
    say "Keystone bootstrapped and answering"
    python3 "$lib/cloud.py" register
    say "service users, services and endpoints registered"

    local j failed=0
    wait "$nova" || failed=1
    for j in "${jobs[@]}"; do wait "$j" || failed=1; done
    [[ $failed == 0 ]] || { say "a db sync failed"; exit 1; }
    systemctl enable -q --now --no-block nova-api nova-conductor nova-scheduler
    say "every service started"
}

ready() {
    python3 "$lib/cloud.py" ready
    say "APIs ready"
}

content() {
    qemu-img create -q -f qcow2 /var/lib/migready-lab-blank.qcow2 64M
    python3 "$lib/cloud.py" content /var/lib/migready-lab-blank.qcow2
    say "image and flavor created"
}

computes() {
    python3 "$lib/cloud.py" computes "$@"
    quiet as nova nova-manage cell_v2 discover_hosts
    say "computes registered and mapped to cell1: $*"
}

cmd=${1:?usage: setup.sh core|ready|content|computes NAME...}
shift
case $cmd in
core) core ;;
ready) ready ;;
content) content ;;
computes) computes "$@" ;;
*) echo "setup.sh: unknown command $cmd" >&2; exit 2 ;;
esac
