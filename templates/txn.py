# migready transaction runner: applies one host's fix plan, verifies it, and rolls it
# back on failure, on the host itself, under a transient systemd unit (migready-fix-RUN.service)
# so that it outlives the SSH session that started it. The controller sends this file and
# the plan in one round trip (see src/fix/apply.rs); everything below runs as root.
#
#   python3 txn.py start         stdin: the plan (one JSON line), later "ack\n".
#                                Recovers transactions a dead runner left incomplete, takes
#                                the host lock (the unit name), starts `apply`, then prints
#                                the journal as it grows (one JSON event per line) until the
#                                transaction ends; an "ack" line on stdin then marks it as
#                                seen by its controller.
#   python3 txn.py apply DIR     the unit's main: every step journaled (fsync) before and
#                                after it runs; on any failure, a deadline passed, or
#                                SIGTERM, everything done is undone in reverse.
#   python3 txn.py recover DIR   roll back what an incomplete journal says was done.
#   python3 txn.py recover-dead DIR   the same, only if the journal has no end: the unit's
#                                ExecStopPost, so a runner killed by anything is undone.
#   python3 txn.py settle RUN    what `start` does first, alone: roll back what dead runners
#                                left, report transactions that ended without their
#                                controller (each once).
#
# A command step may capture a value from its stdout ("capture", a regular expression:
# nft --echo --handle's `# handle N`), journaled in its done record; its undo uses it
# ("{captured}"), and runs only if its "undo_guard" command still shows what it made. If
# the runner died while such a step ran, the guard's listing tells what it made, if any.
#
# Journals live in /var/lib/migready/txn/RUN/journal.jsonl (the last 10 runs are kept).
# No file content is ever journaled or printed: paths, hashes, commands and messages only.
import base64
import fcntl
import grp
import hashlib
import json
import os
import pwd
import re
import select
import shutil
import signal
import subprocess
import sys
import time

BASE = "/var/lib/migready"
TXN = BASE + "/txn"
UNIT = "migready-fix"
KEEP = 10
# Each command of a rollback gets at most this long, and all of them together at most
# the plan's rollback_s (default ROLLBACK_S): a command the time left cannot cover is not
# run (the rollback is then incomplete, and says so).
UNDO_TIMEOUT = 20
ROLLBACK_S = 20
ENV = dict(os.environ, LC_ALL="C", PATH="/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")


def now():
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def boot_id():
    try:
        with open("/proc/sys/kernel/random/boot_id") as f:
            return f.read().strip()
    except OSError:
        return ""


def sha256_file(path):
    try:
        with open(path, "rb") as f:
            return hashlib.sha256(f.read()).hexdigest()
    except FileNotFoundError:
        return None


def fsync_dir(d):
    try:
        fd = os.open(d, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    except OSError:
        pass


class Journal:
    def __init__(self, path):
        self.path = path
        self.f = open(path, "a")

    def log(self, **rec):
        rec["t"] = now()
        self.f.write(json.dumps(rec, sort_keys=True) + "\n")
        self.f.flush()
        os.fsync(self.f.fileno())


def read_journal(path):
    out = []
    try:
        with open(path) as f:
            for line in f:
                try:
                    out.append(json.loads(line))
                except ValueError:
                    pass  # a line cut by a crash
    except OSError:
        pass
    return out


class Abort(Exception):
    pass


def on_term(signum, frame):
    raise Abort("stopped by signal %d" % signum)


def journal_tail(unit):
    p = subprocess.run(["journalctl", "-n", "4", "--no-pager", "-o", "cat", "-u", unit],
                       stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=ENV)
    return p.stdout.decode("utf-8", "replace").strip().replace("\n", " | ")[-800:]


def unit_prop(unit, prop):
    """A property of a unit as `systemctl show` gives it ("" for a unit it does not know)."""
    p = subprocess.run(["systemctl", "show", "-p", prop, "--value", unit],
                       stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=ENV)
    return p.stdout.decode("utf-8", "replace").strip()


def run(argv, timeout, out=None):
    """(exit status, the end of stderr). out: a list that gets stdout's text."""
    try:
        p = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           env=ENV, timeout=max(1, timeout))
    except subprocess.TimeoutExpired:
        return 124, "timed out after %d s" % max(1, timeout)
    except OSError as e:
        return 127, str(e)
    if out is not None:
        out.append(p.stdout.decode("utf-8", "replace"))
    err = p.stderr.decode("utf-8", "replace").strip()
    return p.returncode, err[-2000:]


# A step's "capture": a regular expression run over its command's stdout (multiline); its
# first group is journaled in the step's done record ("captured") and stands for this
# placeholder in the step's undo, undo_display and undo_guard (e.g. the handle nft
# --echo --handle prints for the rule it added, which its undo deletes).
CAPTURED = "{captured}"


def substitute(v, captured):
    if isinstance(v, list):
        return [substitute(x, captured) for x in v]
    if isinstance(v, dict):
        return {k: substitute(x, captured) for k, x in v.items()}
    if isinstance(v, str) and captured is not None:
        return v.replace(CAPTURED, captured)
    return v


def needs_capture(v):
    return CAPTURED in json.dumps(v)


def copy_meta(src_stat, dst, label_from=None):
    os.chown(dst, src_stat.st_uid, src_stat.st_gid)
    os.chmod(dst, src_stat.st_mode & 0o7777)
    if label_from:
        try:
            os.setxattr(dst, "security.selinux", os.getxattr(label_from, "security.selinux"))
        except OSError:
            pass


def temp_path(path, pid):
    """The temp file atomic_write (in process pid) writes path through."""
    return os.path.join(os.path.dirname(path), ".%s.migready.%d" % (os.path.basename(path), pid))


def atomic_write(path, data, like=None, mode=0o644):
    """Write data to path through a temp file in the same directory and a rename.
    like: an os.stat_result (and path) whose owner, mode and label the new file gets."""
    d = os.path.dirname(path)
    tmp = temp_path(path, os.getpid())
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        if like is not None:
            copy_meta(like[0], tmp, like[1])
        else:
            os.chmod(tmp, mode)
        os.rename(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    fsync_dir(d)


class Txn:
    def __init__(self, d, plan, journal):
        self.dir = d
        self.plan = plan
        self.j = journal
        self.start = time.monotonic()
        self.deadline = self.start + float(plan.get("deadline_s", 40))

    def left(self):
        return self.deadline - time.monotonic()

    def clip(self, cap, until=None):
        """A command's timeout: cap, or less when the deadline (or until) is nearer."""
        return max(1, min(cap, (until or self.deadline) - time.monotonic()))

    def check_time(self, what):
        if self.left() <= 0:
            raise Abort("deadline of %d s passed before %s" % (self.plan.get("deadline_s", 40), what))

    def write(self, i, step):
        path = step["path"]
        real = os.path.realpath(path)  # a symlink stays a symlink: its target is edited
        data = base64.b64decode(step["content"])
        want = step.get("expect")
        have = sha256_file(real)
        if have != want:
            if want is None:
                raise Abort("refused to write %s: changed since read: it exists now" % path)
            raise Abort("refused to write %s: changed since read (sha256 %s, planned from %s)"
                        % (path, have or "missing", want))
        new_sha = hashlib.sha256(data).hexdigest()
        backup = None
        if want is not None:
            st = os.stat(real)
            backup = "%s.migready-%s.bak" % (real, time.strftime("%Y%m%d%H%M%S"))
            if os.path.exists(backup):
                backup += ".%d" % os.getpid()
            # Journaled before the backup is made: a runner killed while making it (or
            # the temp file) leaves nothing the rollback does not know of.
            self.j.log(ev="step", i=i, state="start", path=path, real=real, backup=backup, old=want, new=new_sha)
            shutil.copy2(real, backup)
            copy_meta(st, backup, real)
            atomic_write(real, data, like=(st, real))
        else:
            d = os.path.dirname(real)
            if not os.path.isdir(d):
                if not step.get("mkdirs"):
                    raise Abort("refused to write %s: its directory does not exist" % path)
                self.mkdirs(i, d)
            self.j.log(ev="step", i=i, state="start", path=path, real=real, backup=None, old=None, new=new_sha)
            atomic_write(real, data, mode=int(step.get("mode", "0644"), 8))
        if step.get("owner") is not None:
            # A file whose owner and mode are part of the plan (certificates, keys): set
            # as planned, also over an existing file's. Before this, a new file is 0600
            # root (atomic_write's temp file mode) or has the old file's.
            try:
                uid = pwd.getpwnam(step["owner"]).pw_uid
                gid = grp.getgrnam(step.get("group") or step["owner"]).gr_gid
            except KeyError as e:
                raise Abort("refused to write %s: no such user or group %s" % (path, e))
            os.chown(real, uid, gid)
            os.chmod(real, int(step.get("mode", "0644"), 8))
        self.j.log(ev="step", i=i, state="done", path=path, backup=backup,
                   msg="wrote %s" % path + ("" if real == path else " (-> %s)" % real))

    def mkdirs(self, i, d):
        """Creates d and its missing parents (mode 0755 root), each journaled: the
        rollback removes them again (when empty)."""
        missing = []
        while not os.path.isdir(d):
            missing.append(d)
            d = os.path.dirname(d)
        for m in reversed(missing):
            self.j.log(ev="mkdir", i=i, path=m)
            os.mkdir(m, 0o755)
            os.chmod(m, 0o755)
            fsync_dir(os.path.dirname(m))

    def command(self, i, step):
        argv = step["argv"]
        self.j.log(ev="step", i=i, state="start", argv=argv, undo=step.get("undo", []), runtime=step.get("runtime", False),
                   undo_display=step.get("undo_display"), undo_guard=step.get("undo_guard"))
        out = []
        rc, err = run(argv, self.left(), out)
        if rc != 0 and len(argv) == 3 and argv[:2] in (["systemctl", "restart"], ["systemctl", "try-restart"], ["systemctl", "start"]) \
                and unit_prop(argv[2], "ExecMainStatus") == "219":
            # 219/CGROUP: systemd could not place the new process in the unit's cgroup, a
            # transient state (seen under nspawn while the old process's cgroup was going):
            # once more, a second later.
            self.j.log(ev="step", i=i, state="retry", argv=argv, msg="%s: status 219/CGROUP, once more" % " ".join(argv))
            time.sleep(1)
            subprocess.run(["systemctl", "reset-failed", argv[2]], env=ENV, stderr=subprocess.DEVNULL)
            out = []
            rc, err = run(argv, self.left(), out)
        if rc != 0 and len(argv) == 3 and argv[0] == "systemctl":
            err = "%s (journal: %s)" % (err, journal_tail(argv[2]))
        if rc != 0:
            self.j.log(ev="step", i=i, state="failed", argv=argv, rc=rc, err=err)
            raise Abort("%s: exit status %d: %s" % (step.get("display", " ".join(argv)), rc, err))
        msg = "ran %s" % step.get("display", " ".join(argv))
        if step.get("capture"):
            m = re.search(step["capture"], "".join(out), re.M)
            if m is None:
                # It ran, so it is journaled done: its undo cannot run without the value
                # (the rollback says so), and the transaction stops here.
                self.j.log(ev="step", i=i, state="done", argv=argv, captured=None, msg=msg)
                raise Abort("%s: its output has no match for %s, so its undo cannot be planned" % (step.get("display", " ".join(argv)), step["capture"]))
            msg += " (%s)" % m.group(0).lstrip("# ")
            self.j.log(ev="step", i=i, state="done", argv=argv, captured=m.group(1), msg=msg)
            return
        self.j.log(ev="step", i=i, state="done", argv=argv, msg=msg)

    def verify(self):
        v = self.plan.get("verify")
        if not v:
            return
        self.j.log(ev="verify", state="start")
        units = v.get("active", [])
        port = v.get("port")
        closed = v.get("closed")
        until = min(self.deadline, time.monotonic() + float(v.get("timeout_s", 20)))
        while True:
            ok = True
            if units and run(["systemctl", "is-active", "-q"] + units, self.clip(10, until))[0] != 0:
                ok = False
            if ok and run(["virsh", "-q", "-c", "qemu:///system", "version"], self.clip(20, until))[0] != 0:
                ok = False
            if ok and port:
                p = subprocess.run(["ss", "-Hltn", "sport = :%d" % port], stdout=subprocess.PIPE,
                                   stderr=subprocess.DEVNULL, env=ENV)
                ok = bool(p.stdout.strip())
            if ok and closed:
                p = subprocess.run(["ss", "-Hltn", "sport = :%d" % closed], stdout=subprocess.PIPE,
                                   stderr=subprocess.DEVNULL, env=ENV)
                ok = p.returncode == 0 and not p.stdout.strip()
            if ok:
                self.j.log(ev="verify", state="done", msg="verified")
                return
            if time.monotonic() > until:
                p = subprocess.run(["journalctl", "-n", "3", "--no-pager", "-o", "cat", "-u", "libvirtd.service",
                                    "-u", "virtproxyd.service"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=ENV)
                tail = p.stdout.decode("utf-8", "replace").strip().replace("\n", " | ")
                what = ", ".join(units) + " active, libvirt answering"
                if port:
                    what += ", TCP %d listening" % port
                if closed:
                    what += ", nothing on TCP %d" % closed
                raise Abort("the libvirt daemon did not come back (%s): %s" % (what, tail))
            time.sleep(0.5)

    def apply(self):
        delay = float(self.plan.get("step_delay_ms", 0)) / 1000.0
        for i, step in enumerate(self.plan["steps"]):
            if delay:
                time.sleep(delay)
            self.check_time("step %d" % (i + 1))
            if step["op"] == "write":
                self.write(i, step)
            else:
                self.command(i, step)
        if delay:
            time.sleep(delay)
        self.check_time("verify")
        self.verify()


def shutting_down():
    p = subprocess.run(["systemctl", "is-system-running"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=ENV)
    return p.stdout.strip() == b"stopping"


def rollback(journal_recs, j, reset_units, until):
    """Undo, in reverse, what the journal says was started or done. Files first (so that
    restarted daemons read the old configuration), then commands, each within what is
    left until `until` (time.monotonic()). Returns problems."""
    writes, cmds = {}, {}
    for r in journal_recs:
        if r.get("ev") != "step":
            continue
        if "path" in r and r.get("state") == "start":
            writes[r["i"]] = r
        if "argv" in r and r.get("state") == "done":
            cmds[r["i"]] = r
        # A unit command that failed may have stopped the unit (a restart whose start
        # failed): its undo (the restart with the old files) runs too.
        if "argv" in r and r.get("state") == "failed" and r.get("argv", [""])[0] == "systemctl":
            cmds[r["i"]] = r
    starts = {r["i"]: r for r in journal_recs if r.get("ev") == "step" and "argv" in r and r.get("state") == "start"}
    # A capturing command the runner died in (started, neither done nor failed) may have
    # made what its undo needs the value of: its guard's listing tells (below).
    ended = {r["i"] for r in journal_recs if r.get("ev") == "step" and "argv" in r and r.get("state") in ("done", "failed")}
    for i, st in starts.items():
        if i not in ended and st.get("undo_guard") and needs_capture(st.get("undo", [])):
            cmds[i] = dict(st, unfinished=True)
    problems = []
    begin = next((r for r in journal_recs if r.get("ev") == "begin"), {})
    for i in sorted(writes, reverse=True):
        w = writes[i]
        real, backup = w["real"], w.get("backup")
        try:
            # A write cut before its rename (the runner killed) left its temp file.
            os.unlink(temp_path(real, int(begin.get("pid", 0))))
        except (OSError, ValueError):
            pass
        have = sha256_file(real)
        try:
            msg = "restored %s" % w["path"]
            if have == w.get("old"):
                pass  # the rename never happened
            elif have != w["new"]:
                problems.append("%s changed since migready wrote it; left as is" % w["path"])
                continue
            elif backup is None:
                os.unlink(real)
                fsync_dir(os.path.dirname(real))
                msg = "removed %s (new)" % w["path"]
            else:
                with open(backup, "rb") as f:
                    data = f.read()
                atomic_write(real, data, like=(os.stat(backup), backup))
            if backup and os.path.exists(backup):
                os.unlink(backup)
            j.log(ev="undo", i=i, ok=True, msg=msg)
        except OSError as e:
            problems.append("restoring %s: %s" % (w["path"], e))
            j.log(ev="undo", i=i, ok=False, err=str(e))
    # Directories the transaction created, deepest first, once their files are gone.
    for r in reversed([r for r in journal_recs if r.get("ev") == "mkdir"]):
        try:
            if os.path.isdir(r["path"]):
                os.rmdir(r["path"])
                j.log(ev="undo", ok=True, msg="removed directory %s" % r["path"])
        except OSError as e:
            problems.append("removing directory %s: %s" % (r["path"], e))
    runtime_gone = begin.get("boot") != boot_id() or shutting_down()
    if runtime_gone and any(starts.get(i, {}).get("runtime") for i in cmds):
        # Runtime state (rules, running units) ends with the boot it was made in; the
        # next boot builds it from the restored files. Persistent changes are undone.
        j.log(ev="undo", ok=True, msg="runtime changes end with the boot they were made in")
        cmds = {i: r for i, r in cmds.items() if not starts.get(i, {}).get("runtime")}
    # A rollback interrupted and resumed (recover) does not undo a command twice.
    undone = {r.get("i") for r in journal_recs if r.get("ev") == "undo" and r.get("ok") and "argv" in r}
    for i in sorted(cmds, reverse=True):
        if i in undone:
            continue
        start = starts.get(i, {})
        captured = cmds[i].get("captured")
        if cmds[i].get("unfinished"):
            # What the guard shows with any value in the placeholder's place: one line,
            # that value; none, the command made nothing.
            guard = start["undo_guard"]
            pattern = re.escape(guard["line_ends"]).replace(re.escape(CAPTURED), r"(\S+)") + r"\s*$"
            out = []
            rc, err = run(guard["argv"], min(UNDO_TIMEOUT, max(1, until - time.monotonic())), out)
            found = [m.group(1) for m in (re.search(pattern, l) for l in "".join(out).splitlines()) if m] if rc == 0 else []
            if rc == 0 and not found:
                j.log(ev="undo", i=i, ok=True, msg="step %d did not finish and left nothing (%s)" % (i + 1, " ".join(guard["argv"])))
                continue
            if len(found) != 1:
                why = ("`%s`: exit status %d: %s" % (" ".join(guard["argv"]), rc, err)) if rc != 0 else \
                    "`%s` shows %d such lines" % (" ".join(guard["argv"]), len(found))
                problems.append("step %d (%s) did not finish, and what it made cannot be told: %s; left as is"
                                % (i + 1, " ".join(start.get("argv", [])), why))
                j.log(ev="undo", i=i, ok=False, err=why)
                continue
            captured = found[0]
        undo = substitute(start.get("undo", []), captured)
        shown = substitute(start.get("undo_display") or [], captured)
        if captured is None and needs_capture(undo):
            what = "; ".join(start.get("undo_display") or [" ".join(a) for a in undo])
            problems.append("%s: not run: the value it needs from `%s` was not captured; left as is"
                            % (what, " ".join(cmds[i].get("argv", []))))
            j.log(ev="undo", i=i, ok=False, err="nothing captured: undo not run")
            continue
        guard = substitute(start.get("undo_guard"), captured)
        if guard:
            # The undo runs only if the guard's command still shows a line ending with
            # what the step made (e.g. the rule with its handle and migready's comment).
            out = []
            rc, err = run(guard["argv"], min(UNDO_TIMEOUT, max(1, until - time.monotonic())), out)
            if rc != 0 or not any(l.rstrip().endswith(guard["line_ends"]) for l in "".join(out).splitlines()):
                why = ("`%s`: exit status %d: %s" % (" ".join(guard["argv"]), rc, err)) if rc != 0 else \
                    "`%s` shows no line ending with `%s` (gone, or changed since)" % (" ".join(guard["argv"]), guard["line_ends"])
                problems.append("%s: not run: %s; left as is" % ("; ".join(shown or [" ".join(a) for a in undo]), why))
                j.log(ev="undo", i=i, ok=False, err=why)
                continue
        for k, argv in enumerate(undo):
            # A short description where the plan gives one (a script's argv is long).
            what = shown[k] if k < len(shown) else " ".join(argv)
            left = until - time.monotonic()
            if left < 1:
                problems.append("%s: not run: the rollback's time was used up" % what)
                j.log(ev="undo", i=i, ok=False, argv=argv, err="not run: the rollback's time was used up")
                continue
            if argv[:1] == ["systemctl"] and len(argv) >= 3:
                # A failed attempt may have hit the unit's start limit.
                run(["systemctl", "reset-failed", argv[-1]], min(10, left))
            rc, err = run(argv, min(UNDO_TIMEOUT, until - time.monotonic()))
            if rc != 0:
                problems.append("%s: exit status %d: %s" % (what, rc, err))
            j.log(ev="undo", i=i, ok=rc == 0, argv=argv, err=err if rc else None,
                  msg=("undid: " + shown[k]) if k < len(shown) else None)
    if reset_units and until - time.monotonic() >= 1:
        run(["systemctl", "reset-failed"] + reset_units, min(10, until - time.monotonic()))
    return problems


BOOT_UNIT = "/etc/systemd/system/migready-recover.service"
BOOT_LINK = "/etc/systemd/system/multi-user.target.wants/migready-recover.service"


def arm_boot_recovery(d):
    """While a transaction runs, a unit that undoes it at boot if the host lost power
    (an orderly shutdown stops the runner, which rolls back itself)."""
    text = ("[Unit]\nDescription=migready: roll back a fix interrupted by a power cut\n"
            "DefaultDependencies=no\nAfter=local-fs.target\nBefore=libvirtd.service virtproxyd.service virtqemud.service network-pre.target iptables.service ip6tables.service netfilter-persistent.service nftables.service firewalld.service nova-compute.service\n\n"
            "[Service]\nType=oneshot\nExecStart=%s %s recover-dead %s\n\n[Install]\nWantedBy=multi-user.target\n"
            % (sys.executable, os.path.join(BASE, "txn.py"), d))
    try:
        atomic_write(BOOT_UNIT, text.encode())
        os.makedirs(os.path.dirname(BOOT_LINK), exist_ok=True)
        if not os.path.lexists(BOOT_LINK):
            os.symlink(BOOT_UNIT, BOOT_LINK)
        fsync_dir(os.path.dirname(BOOT_LINK))
    except OSError:
        pass  # best effort: the next fix rolls a dead transaction back too


def disarm_boot_recovery():
    for p in (BOOT_LINK, BOOT_UNIT):
        try:
            os.unlink(p)
        except OSError:
            pass
    fsync_dir(os.path.dirname(BOOT_UNIT))


def cmd_apply(d):
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)
    j = Journal(os.path.join(d, "journal.jsonl"))
    try:
        with open(os.path.join(d, "plan.json")) as f:
            plan = json.load(f)
    finally:
        # The plan holds new file contents (nova.conf has secrets): gone once read.
        try:
            os.unlink(os.path.join(d, "plan.json"))
        except OSError:
            pass
    j.log(ev="begin", run=plan["run"], pid=os.getpid(), boot=boot_id(), steps=len(plan["steps"]),
          controller=plan.get("controller", ""), deadline_s=plan.get("deadline_s"), rollback_s=plan.get("rollback_s"))
    t = Txn(d, plan, j)
    error = None
    try:
        arm_boot_recovery(d)
        t.apply()
    except Abort as e:
        error = str(e)
    except Exception as e:  # a bug or an OS error: still roll back
        error = "%s: %s" % (type(e).__name__, e)
    if error is None:
        j.log(ev="end", outcome="verified", msg="applied and verified")
        disarm_boot_recovery()
        return 0
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    j.log(ev="failed", err=error)
    # The rollback has its own bounded time after the deadline (a failure before it
    # leaves the rest of the deadline too).
    until = max(time.monotonic(), t.deadline) + float(plan.get("rollback_s", ROLLBACK_S))
    problems = rollback(read_journal(j.path), j, plan.get("reset_failed", []), until)
    if problems:
        j.log(ev="end", outcome="rollback-incomplete", err=error, problems=problems)
    else:
        j.log(ev="end", outcome="rolled-back", err=error)
    disarm_boot_recovery()
    return 1


def journal_state(recs):
    """(run, outcome) of a journal: outcome None while it has no end record."""
    run_id, outcome = None, None
    for r in recs:
        if r.get("ev") == "begin":
            run_id = r.get("run")
        if r.get("ev") == "end":
            outcome = r.get("outcome")
    return run_id, outcome


def is_dead(recs):
    """A journal without an end whose runner is gone (killed, or the host rebooted)."""
    begin = next((r for r in recs if r.get("ev") == "begin"), None)
    if begin is None or any(r.get("ev") == "end" for r in recs):
        return False
    if begin.get("boot") != boot_id():
        return True
    try:
        with open("/proc/%d/cmdline" % int(begin["pid"]), "rb") as f:
            return b"txn.py" not in f.read()
    except (OSError, ValueError, KeyError):
        return True


def runs():
    try:
        names = sorted(n for n in os.listdir(TXN) if not n.startswith("."))
    except OSError:
        return []
    return [os.path.join(TXN, n) for n in names if os.path.isdir(os.path.join(TXN, n))]


def emit(**rec):
    sys.stdout.write(json.dumps(rec, sort_keys=True) + "\n")
    sys.stdout.flush()


def recover(d):
    jpath = os.path.join(d, "journal.jsonl")
    recs = read_journal(jpath)
    j = Journal(jpath)
    j.log(ev="recover", boot=boot_id())
    begin = next((r for r in recs if r.get("ev") == "begin"), {})
    until = time.monotonic() + float(begin.get("rollback_s") or ROLLBACK_S)
    problems = rollback(recs, j, ["libvirtd.service"], until)
    run_id, _ = journal_state(recs)
    disarm_boot_recovery()
    if problems:
        j.log(ev="end", outcome="rollback-incomplete", err="its runner died (killed, or the host went down); rolled back afterwards", problems=problems)
    else:
        j.log(ev="end", outcome="rolled-back", err="its runner died (killed, or the host went down); rolled back afterwards")
    return run_id, problems


def settle(run_id):
    """What earlier transactions left: a dead runner's changes are rolled back, and
    transactions that ended without their controller are reported (once)."""
    for d in runs():
        jpath = os.path.join(d, "journal.jsonl")
        recs = read_journal(jpath)
        prev, outcome = journal_state(recs)
        if is_dead(recs):
            prev, problems = recover(d)
            emit(ev="previous", run=prev, outcome="died", recovered=not problems, problems=problems)
            Journal(jpath).log(ev="reported", by=run_id)
        elif outcome and not any(r.get("ev") in ("ack", "reported") for r in recs):
            err = next((r.get("err") for r in recs if r.get("ev") == "end"), None)
            emit(ev="previous", run=prev, outcome=outcome, err=err)
            Journal(jpath).log(ev="reported", by=run_id)


def unit_name(run_id):
    """The transient unit of one run: a name of its own, so that the unit of an earlier
    run that systemd has not collected yet (seen under nspawn with cgroup v1: "loaded
    inactive dead" for minutes) never stands in the way of the next."""
    return "%s-%s.service" % (UNIT, run_id)


def unit_state():
    """The state of the unit of the run that last started (current.json), or of the
    fixed-name unit older runners used: the busiest of the two."""
    names = [UNIT + ".service"]
    try:
        with open(os.path.join(TXN, "current.json")) as f:
            names.insert(0, unit_name(json.load(f)["run"]))
    except (OSError, ValueError, KeyError, TypeError):
        pass
    states = [unit_prop(n, "ActiveState") for n in names]
    for busy in ("active", "activating", "reloading", "deactivating"):
        if busy in states:
            return busy
    return states[0] if states else ""


def locked_by():
    """The holder of the host lock as an event, or None when no fix runs. A unit that
    is still deactivating (the last run's ExecStopPost) is waited for, briefly."""
    until = time.monotonic() + 15
    state = unit_state()
    while state == "deactivating" and time.monotonic() < until:
        time.sleep(0.2)
        state = unit_state()
    if state in ("inactive", "failed", ""):
        return None
    holder = {}
    try:
        with open(os.path.join(TXN, "current.json")) as f:
            holder = json.load(f)
    except (OSError, ValueError):
        pass
    return dict(ev="locked", holder=holder.get("run", "?"), since=holder.get("started", "?"),
                controller=holder.get("controller", "?"))


def cmd_settle(run_id):
    os.umask(0o077)
    os.makedirs(TXN, mode=0o700, exist_ok=True)
    with open(os.path.join(TXN, ".lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        held = locked_by()
        if held:
            emit(**held)
            return 75
        settle(run_id)
    return 0


def cmd_start():
    os.umask(0o077)
    os.makedirs(TXN, mode=0o700, exist_ok=True)
    plan = json.loads(sys.stdin.readline())
    run_id = plan["run"]
    if not run_id or any(not (c.isalnum() or c in "-_.") for c in run_id):
        emit(ev="error", err="bad run id")
        return 2
    lock = open(os.path.join(TXN, ".lock"), "a")
    fcntl.flock(lock, fcntl.LOCK_EX)
    try:
        held = locked_by()
        if held:
            emit(**held)
            return 75
        settle(run_id)
        d = os.path.join(TXN, run_id)
        os.makedirs(d, mode=0o700)
        with open(os.path.join(d, "plan.json"), "w") as f:
            json.dump(plan, f)
        with open(os.path.join(TXN, "current.json.tmp"), "w") as f:
            json.dump({"run": run_id, "started": now(), "controller": plan.get("controller", "")}, f)
        os.rename(os.path.join(TXN, "current.json.tmp"), os.path.join(TXN, "current.json"))
        p = start_unit(d, plan)
        if p.returncode != 0:
            emit(ev="error", err="systemd-run: " + p.stderr.decode("utf-8", "replace").strip())
            shutil.rmtree(d, ignore_errors=True)
            return 1
    finally:
        fcntl.flock(lock, fcntl.LOCK_UN)
        lock.close()
    prune()
    return follow(d)


def start_unit(d, plan):
    run_id = os.path.basename(d)
    # The runner ends itself within deadline_s + rollback_s; RuntimeMaxSec stops one that
    # hangs past that (SIGTERM: it rolls back), TimeoutStopSec bounds that rollback and
    # then ExecStopPost's (see src/fix/apply.rs, host_bound).
    return subprocess.run(["systemd-run", "--quiet", "--collect", "--unit=" + unit_name(run_id),
                            "--description=migready fix run " + run_id,
                            "--property=KillMode=process",
                            "--property=RuntimeMaxSec=%d" % int(plan.get("runtime_max_s", 120)),
                            "--property=TimeoutStopSec=%d" % int(plan.get("stop_timeout_s", 60)),
                            # Whatever ends the runner (even SIGKILL), what it left is undone.
                            "--property=ExecStopPost=%s %s recover-dead %s" % (sys.executable, os.path.join(BASE, "txn.py"), d),
                            sys.executable, os.path.join(BASE, "txn.py"), "apply", d],
                          stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=ENV)


def follow(d):
    """Print the journal as it grows until its end record, then wait briefly for the
    controller's ack."""
    jpath = os.path.join(d, "journal.jsonl")
    pos, buf, started = 0, b"", time.monotonic()
    ended = False
    while not ended:
        try:
            with open(jpath, "rb") as f:
                f.seek(pos)
                chunk = f.read()
        except FileNotFoundError:
            chunk = b""
        pos += len(chunk)
        buf += chunk
        while b"\n" in buf:
            line, buf = buf.split(b"\n", 1)
            sys.stdout.write(line.decode("utf-8", "replace") + "\n")
            try:
                if json.loads(line).get("ev") == "end":
                    ended = True
            except ValueError:
                pass
        sys.stdout.flush()
        if ended:
            break
        if not chunk:
            recs = read_journal(jpath)
            if (not recs and time.monotonic() - started > 15) or (recs and is_dead(recs)):
                emit(ev="died", err="the transaction runner is gone without ending its journal")
                return 1
            time.sleep(0.05)
    r, _, _ = select.select([sys.stdin], [], [], 10)
    if r and sys.stdin.readline().strip() == "ack":
        Journal(jpath).log(ev="ack")
    return 0


def prune():
    for d in runs()[:-KEEP]:
        recs = read_journal(os.path.join(d, "journal.jsonl"))
        if journal_state(recs)[1] is not None:
            shutil.rmtree(d, ignore_errors=True)


def main():
    mode = sys.argv[1] if len(sys.argv) > 1 else ""
    if mode == "start":
        return cmd_start()
    if mode == "apply":
        return cmd_apply(sys.argv[2])
    if mode == "recover":
        recover(sys.argv[2])
        return 0
    if mode == "recover-dead":
        recs = read_journal(os.path.join(sys.argv[2], "journal.jsonl"))
        if recs and journal_state(recs)[1] is None:
            recover(sys.argv[2])
        return 0
    if mode == "settle":
        return cmd_settle(sys.argv[2])
    sys.stderr.write("usage: txn.py start|apply DIR|recover DIR|settle RUN\n")
    return 2


if __name__ == "__main__":
    sys.exit(main())
