# migready mesh probe, Python engine (python3 >= 3.6; every Nova compute host has
# one, nova-compute is Python). templates/mesh.sh runs it when python3 is found, and
# falls back to its own POSIX sh probes otherwise. It does the same probes as the
# sh engine, in one process instead of hundreds:
#   resolve:NAME       getaddrinfo(NAME), printed like `getent ahosts NAME`
#   qemu-tcp:NAME      open qemu+tcp://NAME:PORT/system and ask its hostname, through
#                      the libvirt Python binding if importable, else `virsh ... hostname`
#   port:NAME:PORT     a non-blocking TCP connect (refused = reachable), all at once
# and prints the same records:
#   @@MIGREADY@@ <name> <exit status> <stdout in base64 or -> <stderr in base64 or ->
# Input (environment): MESH_TIMEOUT, MESH_LIBVIRT_PORT, MESH_PEERS (NAME PORT... lines),
# MESH_TLS_PEERS (names opened as qemu+tls://NAME/system instead),
# MESH_PARALLEL (bound on live qemu+tcp probes; name lookups run in a thread each).
# Nothing here changes the host. No shell is involved: a peer name goes to
# getaddrinfo(), into the qemu+tcp URI, and to virsh as one argv element after -c.
import base64
import errno
import os
import select
import socket
import subprocess
import sys
import threading
import time

TIMEOUT = float(os.environ.get("MESH_TIMEOUT", "5"))
LIBVIRT_PORT = os.environ.get("MESH_LIBVIRT_PORT", "16509")
PARALLEL = max(1, int(os.environ.get("MESH_PARALLEL", "48") or "48"))
PEERS = []
for line in os.environ.get("MESH_PEERS", "").splitlines():
    words = line.split()
    if words:
        PEERS.append((words[0], [int(p) for p in words[1:]]))

out = sys.stdout.buffer
lock = threading.Lock()


def b64(text):
    if not text:
        return b"-"
    if isinstance(text, str):
        text = text.encode("utf-8", "replace")
    return base64.b64encode(text)


def record(name, status, stdout="", stderr=""):
    line = b"@@MIGREADY@@ " + name.encode() + b" " + str(status).encode() + b" " + b64(stdout) + b" " + b64(stderr) + b"\n"
    with lock:
        out.write(line)


def in_thread(job):
    t = threading.Thread(target=job)
    t.daemon = True  # a probe stuck past its deadline must not hold the exit
    t.start()
    return t


# --- resolve --------------------------------------------------------------------
resolved = {}  # peer -> [(family, address)] or None
resolve_rec = {}  # peer -> (status, stdout, stderr)


def resolve(peer):
    try:
        infos = socket.getaddrinfo(peer, None, 0, socket.SOCK_STREAM)
    except socket.gaierror as e:
        # getent ahosts: exit status 2 when the key is not found
        resolve_rec[peer] = (2, "", "getaddrinfo: %s\n" % e.strerror)
        return
    except Exception as e:  # noqa: BLE001 - any failure is a probe result
        resolve_rec[peer] = (255, "", "getaddrinfo: %s\n" % e)
        return
    addrs = []
    for family, _, _, _, sa in infos:
        if (family, sa[0]) not in addrs:
            addrs.append((family, sa[0]))
    resolved[peer] = addrs
    lines = ["%-15s STREAM%s\n" % (a, " " + peer if i == 0 else "") for i, (_, a) in enumerate(addrs)]
    resolve_rec[peer] = (0, "".join(lines), "")


start = time.monotonic()
names = [p for p, _ in PEERS]
for t in [in_thread(lambda p=p: resolve(p)) for p in names]:
    t.join(max(0, start + TIMEOUT - time.monotonic()))
addresses = {}  # what the port probes connect to: the first address, as nc would
for p in names:
    # A lookup still running after the deadline is abandoned, and its late answer ignored.
    r = resolve_rec.get(p) or (124, "", "getaddrinfo: no answer after %g s\n" % TIMEOUT)
    addresses[p] = resolved.get(p) if r[0] == 0 else None
    record("resolve:" + p, r[0], r[1], r[2])


# --- qemu+tcp (in threads, while the port probes run) -----------------------------
try:
    import libvirt  # the binding nova-compute itself uses

    def _quiet(_ctx, _err):
        pass

    libvirt.registerErrorHandler(_quiet, None)
except Exception:  # noqa: BLE001
    libvirt = None

qemu_done = {}


TLS_PEERS = set(os.environ.get("MESH_TLS_PEERS", "").split())


def qemu_tcp(peer):
    # A peer whose transport is tls: qemu+tls on libvirt's TLS port.
    uri = ("qemu+tls://%s/system" % peer) if peer in TLS_PEERS else ("qemu+tcp://%s:%s/system" % (peer, LIBVIRT_PORT))
    if libvirt is not None:
        try:
            conn = libvirt.open(uri)
            try:
                qemu_done[peer] = (0, conn.getHostname() + "\n", "")
            finally:
                conn.close()
        except libvirt.libvirtError as e:
            qemu_done[peer] = (1, "", "error: failed to connect to the hypervisor\nerror: %s\n" % e.get_error_message())
        except Exception as e:  # noqa: BLE001
            qemu_done[peer] = (1, "", "error: %s\n" % e)
        return
    try:
        p = subprocess.Popen(["virsh", "-c", uri, "hostname"], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    except OSError as e:
        why = "not installed, and the libvirt Python binding is not importable" if e.errno == errno.ENOENT else e.strerror
        qemu_done[peer] = (127, "", "virsh: %s\n" % why)
        return
    try:
        o, e = p.communicate(timeout=TIMEOUT)
        qemu_done[peer] = (p.returncode, o, e)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait()


# Each peer's probe has TIMEOUT from its own start, and at most PARALLEL probes are
# live at once: a probe is done, or past its deadline (a virsh process is killed then;
# a binding call stuck on a silent peer is abandoned to its thread).
qemu_started = {}


def qemu_starter():
    for p in names:
        while True:
            now = time.monotonic()
            live = sum(1 for q, t0 in list(qemu_started.items()) if q not in qemu_done and now < t0 + TIMEOUT)
            if live < PARALLEL:
                break
            time.sleep(0.01)
        qemu_started[p] = time.monotonic()
        in_thread(lambda p=p: qemu_tcp(p))


in_thread(qemu_starter)


# --- TCP ports: non-blocking connects, one poll loop ---------------------------------
# At most MAX_SOCKETS in flight (a large fleet would exceed the open-files limit), each
# with TIMEOUT from its own start.
MAX_SOCKETS = 512
tasks = []
for peer, ports in PEERS:
    for port in ports:
        tasks.append((peer, port))
tasks.reverse()  # popped from the end: inventory order
pending = {}  # fd -> (key, sock, desc, deadline)
poller = select.poll()


def start_connect(peer, port):
    key = "port:%s:%d" % (peer, port)
    addrs = addresses.get(peer)
    if not addrs:
        record(key, 1, "", "connect to %s port %d: the name does not resolve\n" % (peer, port))
        return
    family, addr = addrs[0]
    desc = "connect to %s (%s) port %d (tcp)" % (peer, addr, port)
    try:
        s = socket.socket(family, socket.SOCK_STREAM)
    except OSError as e:
        record(key, 1, "", "%s failed: %s\n" % (desc, e.strerror))
        return
    s.setblocking(False)
    rc = s.connect_ex((addr, port))
    if rc in (errno.EINPROGRESS, errno.EALREADY, errno.EWOULDBLOCK):
        pending[s.fileno()] = (key, s, desc, time.monotonic() + TIMEOUT)
        poller.register(s.fileno(), select.POLLOUT)
        return
    finish(key, s, desc, rc)


def finish(key, s, desc, rc):
    if rc == 0:
        record(key, 0, "", "%s succeeded\n" % desc)
    else:  # refused (reachable), "No route to host" (a REJECT), ...: the words tell
        record(key, 1, "", "%s failed: %s\n" % (desc, os.strerror(rc)))
    s.close()


while tasks or pending:
    while tasks and len(pending) < MAX_SOCKETS:
        start_connect(*tasks.pop())
    if not pending:
        continue
    now = time.monotonic()
    for fd, (key, s, desc, deadline) in list(pending.items()):
        if now >= deadline:
            del pending[fd]
            poller.unregister(fd)
            record(key, 1, "", "%s timed out after %g s\n" % (desc, TIMEOUT))
            s.close()
    if not pending:
        continue
    wait = max(0.0, min(d for (_, _, _, d) in pending.values()) - time.monotonic())
    for fd, _ in poller.poll(wait * 1000 + 1):
        key, s, desc, _ = pending.pop(fd)
        poller.unregister(fd)
        finish(key, s, desc, s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR))

rounds = -(-len(names) // PARALLEL) if names else 0
give_up = time.monotonic() + TIMEOUT * (rounds + 1)


def qemu_settled(p):
    return p in qemu_done or (p in qemu_started and time.monotonic() > qemu_started[p] + TIMEOUT)


while time.monotonic() < give_up and not all(qemu_settled(p) for p in names):
    time.sleep(0.02)
for peer in names:
    r = qemu_done.get(peer)
    if r is None:
        record("qemu-tcp:" + peer, 124, "", "no answer after %g s\n" % TIMEOUT)
    else:
        record("qemu-tcp:" + peer, r[0], r[1], r[2])

out.flush()
# Threads still waiting on a silent peer must not hold the exit.
os._exit(0)
