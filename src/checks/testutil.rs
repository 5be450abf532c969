//! Fixture facts for check tests: real facts gathered from lab hosts
//! (tests/fixtures/facts/), edited record by record to make each case.

use super::*;
use crate::facts::{RawFacts, Record};
use crate::inventory::HostSpec;
use std::time::Duration;

pub fn spec(name: &str, address: &str) -> HostSpec {
    HostSpec {
        name: name.into(),
        address: address.into(),
        port: 22,
        user: "root".into(),
        identity_file: None,
        known_hosts: "/dev/null".into(),
        accept_new_host_keys: false,
        connect_timeout: Duration::from_secs(5),
        command_timeout: Duration::from_secs(60),
        nova_release: None,
        transport: None,
        line: 1,
        groups: Vec::new(),
        ssh: Default::default(),
    }
}

pub fn raw(fixture: &str) -> RawFacts {
    let path = format!("{}/tests/fixtures/facts/{fixture}.txt", env!("CARGO_MANIFEST_DIR"));
    // Either framing: fixtures are facts script output as captured from lab hosts.
    RawFacts::parse_bytes(&std::fs::read(path).unwrap()).unwrap()
}

/// Replace (or add) one record with a successful command output.
pub fn set(raw: &mut RawFacts, name: &str, stdout: &str) {
    raw.records.insert(name.into(), Record { status: 0, stdout: stdout.into(), stderr: String::new() });
}

/// Edit one record's output in place.
pub fn edit(raw: &mut RawFacts, name: &str, f: impl FnOnce(&str) -> String) {
    let r = raw.records.get_mut(name).unwrap_or_else(|| panic!("no record {name}"));
    r.stdout = f(&r.stdout);
}

/// A small fleet: (spec, facts) per host.
pub struct Fleet {
    pub hosts: Vec<(HostSpec, HostFacts)>,
    pub policy: Policy,
    pub skip: Vec<String>,
}

impl Fleet {
    pub fn new(hosts: Vec<(&str, &str, RawFacts)>) -> Fleet {
        Fleet {
            hosts: hosts.into_iter().map(|(n, a, r)| (spec(n, a), HostFacts::from_raw(r))).collect(),
            policy: Policy::default(),
            skip: Vec::new(),
        }
    }

    /// The views of every host, for [`Fleet::ctx`].
    pub fn views(&self) -> Vec<HostView<'_>> {
        self.hosts.iter().map(|(s, f)| HostView { spec: s, facts: f }).collect()
    }

    /// What the checks of host `i` see: every other host is a reached peer.
    pub fn ctx<'a>(&'a self, views: &[HostView<'a>], i: usize) -> Ctx<'a> {
        Ctx {
            me: views[i],
            peers: views.iter().enumerate().filter(|(j, _)| *j != i).map(|(_, v)| *v).collect(),
            unreached: Vec::new(),
            policy: &self.policy,
        }
    }

    /// All findings of host `i`.
    pub fn findings(&self, i: usize) -> Vec<Finding> {
        let views = self.views();
        run_host(&self.ctx(&views, i), &self.skip)
    }

    /// The finding `id` of host `i`.
    pub fn finding(&self, i: usize, id: &str) -> Finding {
        self.findings(i).into_iter().find(|f| f.id == id).unwrap_or_else(|| panic!("no check {id}"))
    }
}
