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
# MESH_PARALLEL (bound on concurrent name lookups and libvirt connections).
# Nothing here changes the host.
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


def bounded(jobs, deadline):
    """Run callables on at most PARALLEL threads; returns the threads (daemons) so
    the caller can tell which did not finish by the deadline."""
    sem = threading.Semaphore(PARALLEL)
    threads = []

    def run(job):
        try:
            job()
        finally:
            sem.release()

    for job in jobs:
        left = deadline - time.monotonic()
        if left <= 0 or not sem.acquire(timeout=left):
            break
        t = threading.Thread(target=run, args=(job,))
        t.daemon = True
        t.start()
        threads.append(t)
    return threads


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
for t in bounded([(lambda p=p: resolve(p)) for p in names], start + TIMEOUT):
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


def qemu_tcp(peer):
    uri = "qemu+tcp://%s:%s/system" % (peer, LIBVIRT_PORT)
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


qemu_start = time.monotonic()
qemu_threads = bounded([(lambda p=p: qemu_tcp(p)) for p in names], qemu_start + TIMEOUT)


# --- TCP ports: all connects at once, one poll loop -----------------------------------
REJECTED = (errno.EHOSTUNREACH, errno.ENETUNREACH, errno.EACCES, errno.EPERM, errno.EHOSTDOWN)
pending = {}  # fd -> (key, sock, desc)
poller = select.poll()
for peer, ports in PEERS:
    addrs = addresses.get(peer)
    for port in ports:
        key = "port:%s:%d" % (peer, port)
        if not addrs:
            record(key, 1, "", "connect to %s port %d: the name does not resolve\n" % (peer, port))
            continue
        family, addr = addrs[0]
        desc = "connect to %s (%s) port %d (tcp)" % (peer, addr, port)
        s = socket.socket(family, socket.SOCK_STREAM)
        s.setblocking(False)
        rc = s.connect_ex((addr, port))
        if rc in (0, errno.ECONNREFUSED):
            record(key, 0 if rc == 0 else 1, "", "%s %s\n" % (desc, "succeeded" if rc == 0 else "failed: Connection refused"))
            s.close()
        elif rc in (errno.EINPROGRESS, errno.EALREADY, errno.EWOULDBLOCK):
            pending[s.fileno()] = (key, s, desc)
            poller.register(s.fileno(), select.POLLOUT)
        else:
            record(key, 1, "", "%s failed: %s\n" % (desc, os.strerror(rc)))
            s.close()

port_deadline = time.monotonic() + TIMEOUT
while pending:
    left = port_deadline - time.monotonic()
    if left <= 0:
        break
    for fd, _ in poller.poll(left * 1000):
        key, s, desc = pending.pop(fd)
        poller.unregister(fd)
        rc = s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if rc == 0:
            record(key, 0, "", "%s succeeded\n" % desc)
        elif rc == errno.ECONNREFUSED:
            record(key, 1, "", "%s failed: Connection refused\n" % desc)
        elif rc in REJECTED:
            record(key, 1, "", "%s failed: %s\n" % (desc, os.strerror(rc)))
        else:
            record(key, 1, "", "%s failed: %s\n" % (desc, os.strerror(rc)))
        s.close()
for key, s, desc in pending.values():
    record(key, 1, "", "%s timed out after %g s\n" % (desc, TIMEOUT))
    s.close()

for t in qemu_threads:
    t.join(max(0, qemu_start + TIMEOUT - time.monotonic()))
for peer in names:
    r = qemu_done.get(peer)
    if r is None:
        record("qemu-tcp:" + peer, 124, "", "no answer after %g s\n" % TIMEOUT)
    else:
        record("qemu-tcp:" + peer, r[0], r[1], r[2])

out.flush()
# Threads still waiting on a silent peer must not hold the exit.
os._exit(0)
