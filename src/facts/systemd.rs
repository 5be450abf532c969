//! `systemctl show -p ... UNIT...`: blocks of `Key=value` lines separated by blank lines.

use std::collections::BTreeMap;

/// The state of one systemd unit, as `systemctl show` reports it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Unit {
    pub id: String,
    /// loaded, not-found, masked, ...
    pub load_state: String,
    /// active, inactive, activating, failed, ...
    pub active_state: String,
    pub sub_state: String,
    /// enabled, disabled, static, masked, "" ...
    pub unit_file_state: String,
    pub main_pid: u32,
    /// Paths of EnvironmentFile= entries (the `-` prefix dropped).
    pub environment_files: Vec<String>,
    /// The argv of ExecStart, as systemd shows it (`argv[]=...`).
    pub exec_start: String,
    /// Listen= of a socket unit, e.g. `[::]:16509 (Stream)`.
    pub listen: Vec<String>,
    pub drop_in_paths: Vec<String>,
    /// Environment= of the unit, as `KEY=value` words (systemd's own quoting removed).
    pub environment: Vec<String>,
}

impl Unit {
    /// The unit file exists (not `not-found`).
    pub fn exists(&self) -> bool {
        self.load_state != "not-found" && !self.load_state.is_empty()
    }
    pub fn is_masked(&self) -> bool {
        self.load_state == "masked" || self.unit_file_state == "masked"
    }
    pub fn is_active(&self) -> bool {
        self.active_state == "active"
    }
    pub fn is_enabled(&self) -> bool {
        matches!(self.unit_file_state.as_str(), "enabled" | "enabled-runtime" | "static" | "alias")
    }
    /// The TCP ports a socket unit listens on (from Listen=).
    pub fn stream_ports(&self) -> Vec<u16> {
        self.listen
            .iter()
            .filter(|l| l.ends_with("(Stream)"))
            .filter_map(|l| {
                let addr = l.trim_end_matches("(Stream)").trim();
                addr.rsplit_once(':').and_then(|(_, p)| p.parse().ok()).or_else(|| addr.parse().ok())
            })
            .collect()
    }
    /// Short state for messages: `active (running), enabled`.
    pub fn describe(&self) -> String {
        if !self.exists() {
            return "not installed".into();
        }
        let mut s = format!("{} ({})", self.active_state, self.sub_state);
        if !self.unit_file_state.is_empty() {
            s.push_str(", ");
            s.push_str(&self.unit_file_state);
        }
        s
    }
}

/// Parse the output of `systemctl show` for several units.
pub fn parse_show(text: &str) -> BTreeMap<String, Unit> {
    let mut units = BTreeMap::new();
    for block in text.split("\n\n") {
        let mut u = Unit::default();
        for line in block.lines() {
            let Some((k, v)) = line.split_once('=') else { continue };
            match k {
                "Id" => u.id = v.to_string(),
                "LoadState" => u.load_state = v.to_string(),
                "ActiveState" => u.active_state = v.to_string(),
                "SubState" => u.sub_state = v.to_string(),
                "UnitFileState" => u.unit_file_state = v.to_string(),
                "MainPID" => u.main_pid = v.parse().unwrap_or(0),
                "EnvironmentFiles" => {
                    // `/etc/default/libvirtd (ignore_errors=yes)`; repeated for several files.
                    if let Some(p) = v.split_whitespace().next() {
                        u.environment_files.push(p.to_string());
                    }
                }
                "ExecStart" => {
                    u.exec_start = v
                        .split(" ; ")
                        .find_map(|part| part.trim().trim_start_matches("{ ").strip_prefix("argv[]="))
                        .unwrap_or(v)
                        .to_string();
                }
                "Environment" => u.environment = split_environment(v),
                "Listen" => u.listen.push(v.to_string()),
                "DropInPaths" => u.drop_in_paths = v.split_whitespace().map(str::to_string).collect(),
                _ => {}
            }
        }
        if !u.id.is_empty() {
            units.insert(u.id.clone(), u);
        }
    }
    units
}

/// `Environment=` as systemctl prints it: words separated by spaces, a word with spaces
/// in double quotes (`LIBVIRTD_ARGS="--timeout 120"` is printed as `"LIBVIRTD_ARGS=--timeout 120"`).
fn split_environment(v: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    for c in v.chars() {
        match c {
            '"' => quoted = !quoted,
            ' ' if !quoted => {
                if !cur.is_empty() {
                    out.push(std::mem::take(&mut cur));
                }
            }
            _ => cur.push(c),
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHOW: &str = "MainPID=43\nExecStart={ path=/usr/sbin/libvirtd ; argv[]=/usr/sbin/libvirtd $LIBVIRTD_ARGS ; ignore_errors=no ; start_time=[Wed 2026-11-25 19:47:43 UTC] ; stop_time=[n/a] ; pid=43 ; code=(null) ; status=0/0 }\nEnvironmentFiles=/etc/sysconfig/libvirtd (ignore_errors=yes)\nId=libvirtd.service\nLoadState=loaded\nActiveState=active\nSubState=running\nUnitFileState=enabled\n\nId=libvirtd-tcp.socket\nLoadState=masked\nActiveState=inactive\nSubState=dead\nUnitFileState=masked\nListen=[::]:16509 (Stream)\n\nId=virtproxyd.socket\nLoadState=not-found\nActiveState=inactive\nSubState=dead\nUnitFileState=\n";

    #[test]
    fn parses_blocks() {
        let units = parse_show(SHOW);
        let l = &units["libvirtd.service"];
        assert_eq!(l.exec_start, "/usr/sbin/libvirtd $LIBVIRTD_ARGS");
        assert_eq!(l.environment_files, vec!["/etc/sysconfig/libvirtd"]);
        assert_eq!(l.main_pid, 43);
        assert!(l.is_active() && l.is_enabled());
        let t = &units["libvirtd-tcp.socket"];
        assert!(t.is_masked());
        assert_eq!(t.stream_ports(), vec![16509]);
        assert!(!units["virtproxyd.socket"].exists());
        assert_eq!(split_environment("\"LIBVIRTD_ARGS=--timeout 120\" A=b"), vec!["LIBVIRTD_ARGS=--timeout 120", "A=b"]);
        assert_eq!(units["virtproxyd.socket"].describe(), "not installed");
    }
}
