//! Nova's configuration as nova-compute reads it: the files oslo.config parses for its
//! command line, in order, later values winning (templates/facts.sh finds the command
//! line and reads the files; records `novaconf:K:PATH`, K the order).

use super::{link_target, ConfigFile, RawFacts};
use crate::formats::ini::{IniDoc, IniEntry};

/// Where the order of the files comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// The running nova-compute's command line (`/proc/PID/cmdline`).
    Process { pid: u32, unit: String },
    /// The unit's ExecStart (nova-compute is not running).
    ExecStart { unit: String },
    /// The unit runs a wrapper (Debian's `/etc/init.d/nova-compute systemd-start`) and
    /// nova-compute is not running: the command line is unknown.
    Wrapper { unit: String, program: String },
    /// No nova-compute unit on the host.
    NoUnit,
    /// Facts without the command line (an older facts script, fixtures):
    /// /etc/nova/nova.conf then /etc/nova/nova-compute.conf.
    Legacy,
}

/// The files nova-compute reads.
#[derive(Debug, Clone)]
pub struct NovaConf {
    /// The files read, in oslo.config's order (a later file's value wins).
    pub files: Vec<ConfigFile<IniDoc>>,
    /// Files the command line names that could not be read (path, why): nova-compute
    /// does not start with one missing.
    pub missing: Vec<(String, String)>,
    /// The `--config-dir` directories (and default `.conf.d` ones) found, in order.
    pub dirs: Vec<String>,
    /// Paths not read: they hold white space (the facts' records cannot carry them).
    pub skipped: Vec<String>,
    pub source: Source,
}

impl Source {
    fn parse(text: &str) -> Source {
        let w: Vec<&str> = text.split_whitespace().collect();
        match w[..] {
            ["pid", pid, unit] => match pid.parse() {
                Ok(pid) => Source::Process { pid, unit: unit.to_string() },
                Err(_) => Source::NoUnit,
            },
            ["ExecStart", unit] => Source::ExecStart { unit: unit.to_string() },
            ["wrapper", unit, ref rest @ ..] => Source::Wrapper { unit: unit.to_string(), program: rest.join(" ") },
            _ => Source::NoUnit,
        }
    }

    pub fn describe(&self) -> String {
        match self {
            Source::Process { pid, unit } => format!("nova-compute's command line (pid {pid}, {unit})"),
            Source::ExecStart { unit } => format!("{unit}'s ExecStart (nova-compute is not running)"),
            Source::Wrapper { unit, program } => {
                format!("oslo.config's defaults: nova-compute is not running and {unit} starts it through {program}, so its command line is unknown")
            }
            Source::NoUnit => "oslo.config's defaults: no nova-compute unit found, so /etc/nova/nova.conf (and nova-compute.conf, nova.conf.d) assumed".into(),
            Source::Legacy => "/etc/nova/nova.conf then /etc/nova/nova-compute.conf (Debian's default)".into(),
        }
    }
}

impl NovaConf {
    pub(super) fn from_raw(raw: &RawFacts) -> NovaConf {
        let Some(source) = raw.ok("nova_args_source") else { return NovaConf::legacy(raw) };
        let mut files: Vec<(usize, ConfigFile<IniDoc>)> = Vec::new();
        let mut missing = Vec::new();
        for (key, rec) in raw.with_prefix("novaconf:") {
            let Some((k, path)) = key.split_once(':') else { continue };
            let Ok(k) = k.parse::<usize>() else { continue };
            if rec.status == 0 {
                let real_path = link_target(raw, &format!("novaconf:{key}"), path);
                files.push((k, ConfigFile { path: path.to_string(), real_path, doc: IniDoc::parse(&rec.stdout) }));
            } else {
                let why = rec.stderr.trim();
                missing.push((k, path.to_string(), if why.is_empty() { format!("exit status {}", rec.status) } else { why.to_string() }));
            }
        }
        files.sort_by_key(|(k, _)| *k);
        missing.sort();
        NovaConf {
            files: files.into_iter().map(|(_, f)| f).collect(),
            missing: missing.into_iter().map(|(_, p, w)| (p, w)).collect(),
            dirs: raw.with_prefix("novadir:").filter(|(_, r)| r.status == 0).map(|(d, _)| d.to_string()).collect(),
            skipped: raw.ok("nova_skipped").map(|t| t.lines().map(str::to_string).collect()).unwrap_or_default(),
            source: Source::parse(source),
        }
    }

    fn legacy(raw: &RawFacts) -> NovaConf {
        let files = [("nova_conf", "/etc/nova/nova.conf"), ("nova_compute_conf", "/etc/nova/nova-compute.conf")]
            .into_iter()
            .filter_map(|(name, path)| {
                let text = raw.ok(name)?;
                Some(ConfigFile { path: path.to_string(), real_path: link_target(raw, name, path), doc: IniDoc::parse(text) })
            })
            .collect();
        NovaConf { files, missing: Vec::new(), dirs: Vec::new(), skipped: Vec::new(), source: Source::Legacy }
    }

    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
    }

    /// The value of `[section] key` nova-compute sees, and the file and entry that decided
    /// it (the last file that sets it; in that file, its last assignment).
    pub fn get(&self, section: &str, key: &str) -> Option<(&ConfigFile<IniDoc>, &IniEntry)> {
        self.files.iter().rev().find_map(|c| c.doc.get(section, key).map(|e| (c, e)))
    }

    /// The file a new value of `[section] key` goes to: the one that decides it now,
    /// else /etc/nova/nova.conf when nova-compute reads it, else the last file read
    /// (nothing sets the key, so any of them would decide).
    pub fn file_for(&self, section: &str, key: &str) -> Option<&ConfigFile<IniDoc>> {
        self.get(section, key)
            .map(|(c, _)| c)
            .or_else(|| self.files.iter().find(|c| c.path == "/etc/nova/nova.conf"))
            .or_else(|| self.files.last())
    }

    /// Evidence: which files, in which order, and from what.
    pub fn evidence(&self) -> String {
        let mut s = if self.files.is_empty() {
            "nova-compute reads no configuration file".to_string()
        } else {
            format!("nova-compute reads {}", self.files.iter().map(|c| c.path.as_str()).collect::<Vec<_>>().join(", "))
        };
        s.push_str(&format!(" (order from {}; later files win)", self.source.describe()));
        for (p, why) in &self.missing {
            s.push_str(&format!("; {p} cannot be read: {why}"));
        }
        for p in &self.skipped {
            s.push_str(&format!("; {p:?} not read (white space in the path)"));
        }
        s
    }

    /// Frees the files' texts (see [`super::HostFacts::drop_texts`]).
    pub fn drop_texts(&mut self) {
        for c in &mut self.files {
            c.doc.drop_text();
        }
    }
}
