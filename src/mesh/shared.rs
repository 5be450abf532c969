//! `storage.shared-instances`: Nova's own shared storage test between two hosts
//! (`_check_shared_storage_test_file`): a file made in the destination's instances path
//! must not be seen in the source's. Seen, Nova refuses a block migration between them
//! ("Block migration can not be used with shared storage").
//!
//! Three steps over the run's SSH sessions, each on all hosts at once: every destination
//! makes one uniquely named empty file (`.migready-shared-test-RUN-NAME`, removing such
//! files older than 10 minutes that a killed run left); every source looks for its peers'
//! files in its own instances path; every destination removes its file. The only trace is
//! that file, for the length of the run.

use crate::audit::{self, Gathered};
use crate::checks::{HostView, Outcome};
use crate::inventory::HostSpec;
use crate::shell::quote;
use crate::transport::Session;

pub const ID: &str = "storage.shared-instances";
const PREFIX: &str = ".migready-shared-test-";

/// The test file's name for destination `name` in run `run`.
pub fn file_name(run: &str, name: &str) -> String {
    format!("{PREFIX}{run}-{name}")
}

/// Makes the test file in `dir`; prints its path.
pub fn create_script(dir: &str, file: &str) -> String {
    let (d, f) = (quote(dir), quote(file));
    format!(
        "d={d}; f=\"$d\"/{f}\n\
         [ -d \"$d\" ] || {{ echo \"no such directory: $d\" >&2; exit 3; }}\n\
         find \"$d\" -maxdepth 1 -name '{PREFIX}*' -mmin +10 -exec rm -f {{}} + 2>/dev/null\n\
         (umask 077; set -C; : >\"$f\") || exit 4\n\
         printf '%s\\n' \"$f\"\n"
    )
}

/// Looks for each file in `dir`; prints `seen NAME` or `absent NAME` per file.
pub fn look_script(dir: &str, files: &[String]) -> String {
    let mut s = format!("d={}\n", quote(dir));
    for f in files {
        let f = quote(f);
        s.push_str(&format!("if [ -e \"$d\"/{f} ]; then echo seen {f}; else echo absent {f}; fi\n"));
    }
    s
}

/// Removes the test file; fails if it is still there.
pub fn remove_script(path: &str) -> String {
    let p = quote(path);
    format!("rm -f -- {p}\n[ ! -e {p} ] || {{ echo 'still there after rm -f' >&2; exit 1; }}\n")
}

/// Runs `script` on host `i`: over the session the run kept (put back afterwards), else
/// over a new connection. stdout, or why not.
fn run_on(spec: &HostSpec, g: &Gathered, script: &str) -> Result<String, String> {
    let mut s = match g.take_session() {
        Some(s) => s,
        None => Session::connect(&audit::target(spec)).map_err(|e| e.to_string())?,
    };
    let out = s.run_script(script).map_err(|e| e.to_string());
    *g.session.lock().unwrap_or_else(|e| e.into_inner()) = Some(s);
    let out = out?;
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    if out.success() {
        Ok(stdout)
    } else {
        let e = String::from_utf8_lossy(&out.stderr).trim().to_string();
        Err(if e.is_empty() { format!("exit status {}", out.status) } else { e })
    }
}

/// What each step gave, per pair: judged by [`judge`].
pub struct PairRun<'a> {
    pub me: &'a str,
    pub peer: &'a str,
    pub my_dir: &'a str,
    pub peer_dir: &'a str,
    /// The destination's file: its path, or why it could not be made.
    pub created: &'a Result<String, String>,
    /// What the source's look printed (`seen NAME`, `absent NAME` lines), or why it failed.
    pub looked: &'a Result<String, String>,
    /// The removal of the destination's file.
    pub removed: &'a Result<String, String>,
    pub file: &'a str,
}

/// The finding of one pair.
pub fn judge(p: &PairRun) -> Outcome {
    let PairRun { me, peer, my_dir, peer_dir, file, .. } = *p;
    let path = match p.created {
        Err(e) => return Outcome::warn(format!("Nova's shared storage test could not run: no test file could be made in {peer}'s instances path {peer_dir}: {e}")),
        Ok(path) => path.trim().to_string(),
    };
    let mut ev = vec![format!("on {peer}: made {path}")];
    let seen = match p.looked {
        Err(e) => {
            ev.push(removal(peer, &path, p.removed));
            return Outcome::fail(format!("Nova's shared storage test could not look on {me}: {e}")).with_all(ev);
        }
        Ok(out) => out.lines().find_map(|l| {
            let (what, name) = l.split_once(' ')?;
            (name == file || name == quote(file)).then_some(what == "seen")
        }),
    };
    let Some(seen) = seen else {
        ev.push(removal(peer, &path, p.removed));
        return Outcome::fail(format!("Nova's shared storage test: the look on {me} printed nothing for {file}")).with_all(ev);
    };
    ev.push(format!("on {me}: test -e {my_dir}/{file}: {}", if seen { "found" } else { "not found" }));
    ev.push(removal(peer, &path, p.removed));
    let left = p.removed.is_err();
    let out = if seen {
        Outcome::fail(format!(
            "{me}'s instances path {my_dir} is shared with {peer}'s {peer_dir}: a file made on {peer} is seen on {me} (Nova's own test); Nova refuses block migration between them (\"Block migration can not be used with shared storage\"): give each host its own local instances path, or migrate without --block-migrate"
        ))
    } else if left {
        Outcome::fail(format!("a file made in {peer}'s instances path {peer_dir} is not seen in {me}'s {my_dir} (not shared), but it could not be removed from {peer}"))
    } else {
        Outcome::pass(format!("a file made in {peer}'s instances path {peer_dir} is not seen in {me}'s {my_dir}: not shared (Nova's own test)"))
    };
    out.with_all(ev)
}

fn removal(peer: &str, path: &str, removed: &Result<String, String>) -> String {
    match removed {
        Ok(_) => format!("on {peer}: removed {path}"),
        Err(e) => format!("on {peer}: NOT removed {path}: {e}"),
    }
}

/// Nova's shared storage test for `pairs` (indexes into `inv.hosts`) among the reached
/// hosts `views`; one outcome per pair, None where a host of the pair was not reached.
pub fn run(hosts: &[HostSpec], gathered: &[Gathered], views: &[Option<HostView>], pairs: &[(usize, usize)], parallel: usize, run_id: &str) -> Vec<Option<Outcome>> {
    let reached = |i: usize| views[i].is_some();
    let mut dests: Vec<usize> = pairs.iter().filter(|p| reached(p.0) && reached(p.1)).map(|p| p.1).collect();
    dests.sort();
    dests.dedup();
    let mut sources: Vec<usize> = pairs.iter().filter(|p| reached(p.0) && reached(p.1)).map(|p| p.0).collect();
    sources.sort();
    sources.dedup();
    let dir = |i: usize| views[i].map(|v| v.facts.instances_path.clone()).unwrap_or_default();
    let file = |i: usize| file_name(run_id, &hosts[i].name);

    let created = audit::fan_out(&dests, parallel, |&b| run_on(&hosts[b], &gathered[b], &create_script(&dir(b), &file(b))), |_| {});
    let looked = audit::fan_out(
        &sources,
        parallel,
        |&a| {
            let files: Vec<String> = pairs.iter().filter(|p| p.0 == a && reached(p.1)).map(|p| file(p.1)).collect();
            run_on(&hosts[a], &gathered[a], &look_script(&dir(a), &files))
        },
        |_| {},
    );
    let removed = audit::fan_out(
        &dests,
        parallel,
        |&b| {
            let k = dests.iter().position(|d| *d == b).expect("a destination");
            match &created[k] {
                Ok(path) => run_on(&hosts[b], &gathered[b], &remove_script(path.trim())),
                Err(_) => Ok(String::new()),
            }
        },
        |_| {},
    );
    pairs
        .iter()
        .map(|&(a, b)| {
            if !(reached(a) && reached(b)) {
                return None;
            }
            let kb = dests.iter().position(|d| *d == b)?;
            let ka = sources.iter().position(|s| *s == a)?;
            let (my_dir, peer_dir, f) = (dir(a), dir(b), file(b));
            Some(judge(&PairRun {
                me: &hosts[a].name,
                peer: &hosts[b].name,
                my_dir: &my_dir,
                peer_dir: &peer_dir,
                created: &created[kb],
                looked: &looked[ka],
                removed: &removed[kb],
                file: &f,
            }))
        })
        .collect()
}
