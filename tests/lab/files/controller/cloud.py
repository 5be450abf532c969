#!/usr/bin/python3
"""The lab cloud's API work in one process (each openstack CLI call costs ~2 s here).

    cloud.py register            service project, users, roles, services, endpoints
    cloud.py ready               until Nova's conductor and scheduler are up, Placement,
                                 Glance and Neutron answer; warms Neutron's mappers up
    cloud.py content IMAGE       the Glance image migready-lab-blank and the flavor
                                 migready-lab-tiny (64 MiB, 1 vCPU, 1 GB)
    cloud.py computes NAME...    until those nova-compute services are up, their
                                 hypervisors known and their resource providers in Placement
    cloud.py get PATH [VERSION]  the raw JSON of a Nova API GET (PATH under /v2.1), with
                                 OpenStack-API-Version: compute VERSION if given

Reads /etc/migready-lab/cloud.env (CTL_ADDR, ADMIN_PASS, SERVICE_PASS).
"""
import sys
import time

from keystoneauth1 import session as ks_session
from keystoneauth1.identity import v3

ENV = {}
with open("/etc/migready-lab/cloud.env") as f:
    for line in f:
        if "=" in line:
            k, v = line.strip().split("=", 1)
            ENV[k] = v.strip("'\"")
CTL = ENV["CTL_ADDR"]
REGION = "RegionOne"
AUTH_URL = f"http://{CTL}:5000/v3"

ENDPOINTS = {
    # name, type, url
    "nova": ("compute", f"http://{CTL}:8774/v2.1"),
    "placement": ("placement", f"http://{CTL}:8778"),
    "glance": ("image", f"http://{CTL}:9292"),
    "neutron": ("network", f"http://{CTL}:9696"),
}


def say(msg):
    print(f"cloud.py: {msg}", file=sys.stderr, flush=True)


def admin_session():
    auth = v3.Password(auth_url=AUTH_URL, username="admin", password=ENV["ADMIN_PASS"],
                       project_name="admin", user_domain_id="default",
                       project_domain_id="default")
    # uWSGI's http-socket closes kept-alive connections: a request sent on one as it closes
    # fails with "Connection reset by peer" before the server saw it; retry those.
    return ks_session.Session(auth=auth, connect_retries=5)


def register():
    """Idempotent: what exists already is kept (a retried request may have landed)."""
    from keystoneclient.v3 import client
    ks = client.Client(session=admin_session(), interface="public")

    def one(manager, create, **find):
        found = manager.list(**find)
        return found[0] if found else create()
    service = one(ks.projects, lambda: ks.projects.create(
        "service", domain="default", description="lab services"), name="service")
    admin = ks.roles.find(name="admin")
    for name, (stype, url) in ENDPOINTS.items():
        user = one(ks.users, lambda: ks.users.create(
            name, domain="default", password=ENV["SERVICE_PASS"], default_project=service),
            name=name)
        ks.roles.grant(admin, user=user, project=service)
        svc = one(ks.services, lambda: ks.services.create(
            name, type=stype, description=f"lab {stype}"), name=name)
        for interface in ("public", "internal", "admin"):
            one(ks.endpoints, lambda: ks.endpoints.create(
                svc, url, interface=interface, region=REGION), service=svc,
                interface=interface)
        say(f"registered {name} ({stype}, {url})")


def wait(what, probe, timeout):
    deadline = time.monotonic() + timeout
    last = None
    while True:
        try:
            if probe():
                return
        except Exception as e:  # not up yet
            last = e
        if time.monotonic() > deadline:
            raise SystemExit(f"cloud.py: {what} not ready after {timeout} s ({last})")
        time.sleep(1)


def ready():
    s = admin_session()
    for name, (stype, url) in ENDPOINTS.items():
        wait(f"{name} API", lambda: s.get(url + "/", authenticated=False,
                                          raise_exc=False).status_code < 500, 300)
        say(f"{name} API answers")
    # Neutron 21: port lists answer 500 (Port has no port_forwardings) until another
    # query has configured SQLAlchemy's mappers; one agent list cures it.
    wait("neutron agents", lambda: s.get(ENDPOINTS["neutron"][1] + "/v2.0/agents",
                                         raise_exc=False).status_code == 200, 120)
    ports = s.get(ENDPOINTS["neutron"][1] + "/v2.0/ports", raise_exc=False).status_code
    say(f"neutron warmed up (GET /v2.0/agents; ports list {ports})")

    def services_up():
        r = s.get(ENDPOINTS["nova"][1] + "/os-services", raise_exc=False)
        if r.status_code != 200:
            return False
        up = {x["binary"] for x in r.json()["services"] if x["state"] == "up"}
        return {"nova-conductor", "nova-scheduler"} <= up
    wait("nova-conductor and nova-scheduler", services_up, 300)
    say("nova-conductor and nova-scheduler up")


def content(image):
    import openstack
    conn = openstack.connect(auth_url=AUTH_URL, username="admin",
                             password=ENV["ADMIN_PASS"], project_name="admin",
                             user_domain_id="default", project_domain_id="default",
                             region_name=REGION, identity_api_version="3")
    img = conn.image.create_image(name="migready-lab-blank", filename=image,
                                  disk_format="qcow2", container_format="bare",
                                  visibility="public", wait=True)
    say(f"image migready-lab-blank {img.id}")
    fl = conn.compute.create_flavor(name="migready-lab-tiny", ram=64, vcpus=1, disk=1)
    say(f"flavor migready-lab-tiny {fl.id}")


def computes(names):
    s = admin_session()
    nova = ENDPOINTS["nova"][1]

    def all_up():
        r = s.get(nova + "/os-services?binary=nova-compute", raise_exc=False)
        up = {x["host"] for x in r.json()["services"] if x["state"] == "up"}
        h = s.get(nova + "/os-hypervisors", raise_exc=False)
        known = {x["hypervisor_hostname"].split(".")[0] for x in h.json()["hypervisors"]}
        p = s.get(ENDPOINTS["placement"][1] + "/resource_providers", raise_exc=False)
        rps = {x["name"].split(".")[0] for x in p.json()["resource_providers"]}
        return set(names) <= up and set(names) <= known and set(names) <= rps
    wait(f"nova-compute on {', '.join(names)}", all_up, 600)
    say(f"nova-compute up on {', '.join(names)}")


def get(path, version=None):
    import json
    headers = {"OpenStack-API-Version": f"compute {version}"} if version else {}
    r = admin_session().get(ENDPOINTS["nova"][1] + path, headers=headers, raise_exc=False)
    if r.status_code != 200:
        raise SystemExit(f"cloud.py: GET {path}: HTTP {r.status_code}: {r.text}")
    print(json.dumps(r.json(), indent=2, sort_keys=True))


def main():
    cmd, *args = sys.argv[1:]
    if cmd == "register":
        register()
    elif cmd == "ready":
        ready()
    elif cmd == "content":
        content(args[0])
    elif cmd == "computes":
        computes(args)
    elif cmd == "get":
        get(*args)
    else:
        raise SystemExit(__doc__)


if __name__ == "__main__":
    main()
