use super::*;
use crate::checks::testutil::{raw, spec};
use crate::facts::{HostFacts, Record};

fn rec(status: i32, stdout: &str, stderr: &str) -> Record {
    Record { status, stdout: stdout.into(), stderr: stderr.into() }
}

#[test]
fn pair_selection() {
    assert_eq!(select(3, Pairs::Ring), vec![(0, 1), (1, 2), (2, 0)]);
    assert_eq!(select(2, Pairs::Ring), vec![(0, 1), (1, 0)]);
    assert!(select(1, Pairs::Ring).is_empty());
    assert_eq!(select(3, Pairs::Full).len(), 6);
    assert!(select(3, Pairs::None).is_empty());
}

#[test]
fn sampled_ports() {
    assert_eq!(sample_ports(49152, 49215), vec![49152, 49153, 49183, 49215]);
    assert_eq!(sample_ports(5000, 5000), vec![5000]);
    assert_eq!(sample_ports(5001, 5000), vec![5000, 5001]);
}

#[test]
fn nc_outcomes() {
    let refused = "nc: connect to v2 (198.18.47.12) port 49152 (tcp) failed: Connection refused\n";
    assert_eq!(port_state(1, refused), PortState::Reachable);
    assert_eq!(port_state(0, "Connection to v2 (198.18.47.12) 16509 port [tcp/*] succeeded!\n"), PortState::Reachable);
    assert!(matches!(port_state(1, "nc: connect to v2 (198.18.47.12) port 49152 (tcp) failed: No route to host\n"), PortState::Rejected(_)));
    assert_eq!(port_state(1, "nc: connect to v2 (198.18.47.12) port 49152 (tcp) timed out: Operation now in progress\n"), PortState::TimedOut);
    assert_eq!(port_state(124, ""), PortState::TimedOut);
    assert!(matches!(port_state(1, "nc: getaddrinfo for host \"x\" port 1: Name or service not known\n"), PortState::Error(_)));
}

fn hosts() -> (Vec<crate::inventory::HostSpec>, Vec<HostFacts>) {
    let specs = vec![spec("cmp1", "198.18.42.11"), spec("cmp2", "198.18.42.12"), spec("cmp3", "198.18.42.13")];
    let facts = vec![
        HostFacts::from_raw(raw("bookworm-socket")),
        HostFacts::from_raw(raw("trixie-socket")),
        HostFacts::from_raw(raw("bookworm-traditional-reject")),
    ];
    (specs, facts)
}

fn probe_records(entries: &[(&str, Record)]) -> RawFacts {
    let mut r = RawFacts::default();
    for (k, v) in entries {
        r.records.insert(k.to_string(), v.clone());
    }
    r
}

#[test]
fn judge_all_good_and_all_bad() {
    let (specs, facts) = hosts();
    let views: Vec<HostView> = specs.iter().zip(&facts).map(|(spec, facts)| HostView { spec, facts }).collect();
    let refused = "nc: connect to cmp2 (198.18.42.12) port 49152 (tcp) failed: Connection refused";
    let good = probe_records(&[
        ("resolve:cmp2", rec(0, "198.18.42.12    STREAM cmp2\n198.18.42.12    DGRAM\n", "")),
        ("qemu-tcp:cmp2", rec(0, "cmp2\n", "")),
        ("port:cmp2:49152", rec(1, "", refused)),
        ("port:cmp2:49215", rec(1, "", refused)),
    ]);
    let f = judge(&views[0], &views[1], &good, 16509, &views);
    assert_eq!(f.iter().map(|f| f.status).collect::<Vec<_>>(), vec![Status::Pass; 4], "{f:#?}");
    // cmp2 (trixie-socket) sets neither live_migration_inbound_addr nor [DEFAULT] host:
    // Nova hands cmp1 its hostname, cmp2, which the mesh probes.
    assert!(f[3].message.starts_with("Nova hands cmp1 cmp2 for cmp2 (its service host name: its hostname (no live_migration_inbound_addr, no [DEFAULT] host)), the mesh probes it as cmp2: cmp2 resolves to 198.18.42.12"), "{}", f[3].message);
    assert!(f[0].message.contains("cmp2 resolves to 198.18.42.12 on cmp1"), "{}", f[0].message);
    assert!(f[2].message.contains("TCP 49152, 49215 of cmp2's migration range 49152-49215 reachable from cmp1"), "{}", f[2].message);

    let bad = probe_records(&[
        ("resolve:cmp2", rec(0, "198.18.42.13    STREAM cmp2\n", "")),
        ("qemu-tcp:cmp2", rec(0, "cmp3\n", "")),
        ("port:cmp2:49152", rec(1, "", "nc: connect to cmp2 (198.18.42.13) port 49152 (tcp) failed: No route to host")),
        ("port:cmp2:49215", rec(1, "", "nc: connect to cmp2 (198.18.42.13) port 49215 (tcp) timed out: Operation now in progress")),
    ]);
    let f = judge(&views[0], &views[1], &bad, 16509, &views);
    assert_eq!(f.iter().map(|f| f.status).collect::<Vec<_>>(), vec![Status::Fail; 4], "{f:#?}");
    assert!(f[0].message.contains("198.18.42.13 on cmp1, which is cmp3's"), "{}", f[0].message);
    assert!(f[1].message.contains("answers as cmp3, not cmp2"), "{}", f[1].message);
    assert!(f[2].message.contains("TCP 49152-49215 is filtered from cmp1: 49152 rejected"), "{}", f[2].message);
    assert!(f[2].message.contains("49215 timed out after 5 s (dropped)"), "{}", f[2].message);

    let unresolved = probe_records(&[
        ("resolve:cmp2", rec(2, "", "")),
        ("qemu-tcp:cmp2", rec(1, "", "error: failed to connect to the hypervisor\nerror: Unable to resolve address 'cmp2' service '16509': Name or service not known\n")),
    ]);
    let f = judge(&views[0], &views[1], &unresolved, 16509, &views);
    assert!(f[0].message.contains("cmp2 does not resolve on cmp1"), "{}", f[0].message);
    assert!(f[1].message.ends_with("failed: Unable to resolve address 'cmp2' service '16509': Name or service not known"), "{}", f[1].message);
    // Both engines print a record per port probed, resolved or not: none is a broken probe.
    assert_eq!((f[2].status, f[2].message.as_str()), (Status::Fail, "the mesh probe on cmp1 printed no port record for cmp2"));
    let f = judge(&views[0], &views[1], &probe_records(&[("port:cmp2:49152", rec(1, "", refused))]), 16509, &views);
    assert_eq!(f[0].message, "the mesh probe on cmp1 printed no resolve record for cmp2");
    assert_eq!(f[1].message, "the mesh probe on cmp1 printed no qemu-tcp record for cmp2");
    assert_eq!(f.iter().map(|f| f.status).collect::<Vec<_>>(), vec![Status::Fail, Status::Fail, Status::Pass, Status::Fail]);
}

#[test]
fn a_failed_probe_fails_the_pair_checks() {
    use crate::transport::Output;
    let out = |status: i32, stdout: &[u8], stderr: &[u8]| Output { stdout: stdout.to_vec(), stderr: stderr.to_vec(), status };
    let good = b"@@MIGREADY@@ resolve:cmp2 0 - -\n";
    assert!(probe_output(&out(0, good, b"")).unwrap().get("resolve:cmp2").is_some());
    // Records, but the script failed: not trusted.
    assert_eq!(probe_output(&out(1, good, b"boom\n")).unwrap_err(), "the probe script exited with status 1; stderr: boom");
    // Garbage, or nothing at all.
    let e = probe_output(&out(0, b"Traceback (most recent call last):\n", b"")).unwrap_err();
    assert_eq!(e, "the probe script printed no usable records (exit status 0): facts output line 0: no facts in the output");
    let e = probe_output(&out(0, b"@@MIGREADY@@ resolve:cmp2 zero - -\n", b"")).unwrap_err();
    assert!(e.contains("line 1: bad exit status"), "{e}");

    let (specs, facts) = hosts();
    let views: Vec<HostView> = specs.iter().zip(&facts).map(|(spec, facts)| HostView { spec, facts }).collect();
    let failed: Result<RawFacts, String> = Err("the mesh probe on cmp1 failed: timed out after 10s running the script".into());
    let f = pair_checks(("cmp1", "cmp2"), Some(views[0]), Some(views[1]), &failed, 16509, &views);
    assert_eq!(f.iter().map(|f| (f.id, f.status)).collect::<Vec<_>>(), vec![(RESOLVE, Status::Fail), (QEMU_TCP, Status::Fail), (MIGRATION_PORTS, Status::Fail), (NOVA_ADDRESS, Status::Fail)]);
    assert!(f.iter().all(|f| f.message == "the mesh probe on cmp1 failed: timed out after 10s running the script"), "{f:#?}");
    // The run fails (exit status 1), where it used to pass with three skips.
    let pair = crate::report::PairReport { from: "cmp1".into(), to: "cmp2".into(), checks: f };
    assert!(crate::report::Report::with_pairs(Vec::new(), vec![pair], 0).failed());
    // A host not reached: its pairs are skipped (its ssh.connect already fails).
    for (from, to) in [(None, Some(views[1])), (Some(views[0]), None)] {
        let f = pair_checks(("cmp1", "cmp2"), from, to, &failed, 16509, &views);
        assert!(f.iter().all(|f| f.status == Status::Skip && f.message.ends_with("was not reached")), "{f:#?}");
    }
}

#[test]
fn inventory_skips_apply_to_pair_checks() {
    let mut found = not_probed("x");
    found[1] = Finding { id: QEMU_TCP, status: Status::Fail, message: "refused".into(), evidence: vec!["e".into()] };
    apply_skip(&mut found, &["mesh.qemu-tcp".to_string()]);
    assert_eq!(found[1].status, Status::Skip);
    assert_eq!(found[1].message, "skipped by the inventory ([checks] skip)");
    assert!(found[1].evidence.is_empty());
    assert_eq!(found[0].message, "x");
    // The inventory accepts the pair check IDs (and still refuses unknown ones).
    let ids = crate::check_ids();
    for id in [RESOLVE, QEMU_TCP, MIGRATION_PORTS, NOVA_ADDRESS, crate::validate::PRECHECKS, crate::validate::LIVE_BLOCK] {
        assert!(ids.contains(&id), "{id}");
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("inv.toml");
    std::fs::write(&path, "[checks]\nskip = [\"mesh.qemu-tcp\", \"migration.live-block\"]\n").unwrap();
    let inv = crate::inventory::load(&path, &ids).unwrap();
    assert_eq!(inv.skip, vec!["mesh.qemu-tcp", "migration.live-block"]);
    std::fs::write(&path, "[checks]\nskip = [\"mesh.nope\"]\n").unwrap();
    assert!(crate::inventory::load(&path, &ids).unwrap_err().to_string().contains("mesh.nope"));
}

#[test]
fn script_carries_the_peers() {
    let s = script_for(&[("cmp2".into(), vec![49152, 49215]), ("cmp3".into(), vec![1])], 16509);
    assert!(s.starts_with("MESH_TIMEOUT=5\nMESH_LIBVIRT_PORT=16509\nMESH_ENGINE=auto\nMESH_PEERS='cmp2 49152 49215\ncmp3 1'\n"), "{s}");
    // The Python engine is inside, between its here-document markers.
    assert!(!s.contains("@@MESH_PY@@"));
    assert!(s.contains("<<'MIGREADY_MESH_PY' && exit 0\n# migready mesh probe, Python engine"));
    assert!(s.contains("\nos._exit(0)\nMIGREADY_MESH_PY\n"));
    assert!(script_with(&[], 16509, "sh").contains("\nMESH_ENGINE=sh\n"));
}

/// Run the probe script on this machine, as a host would, with the given engine.
fn run_here(peers: &[(String, Vec<u16>)], engine: &str) -> RawFacts {
    use std::io::Write;
    let mut child = std::process::Command::new("sh")
        .arg("-s")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("sh");
    child.stdin.take().unwrap().write_all(script_with(peers, 1, engine).as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    // A failing probe script fails the pair checks: the real one exits 0.
    assert!(out.status.success(), "{engine}: {:?}", out.status);
    RawFacts::parse(&String::from_utf8_lossy(&out.stdout)).expect("records")
}

fn have(cmd: &str) -> bool {
    ["/usr/bin", "/bin", "/usr/sbin", "/sbin"].iter().any(|d| std::path::Path::new(d).join(cmd).exists())
}

/// Both engines on real sockets of this machine: a listening port, a closed one, a
/// name that does not resolve. Needs sh, python3, getent and nc (netcat) here.
#[test]
fn engines_agree_on_real_sockets() {
    if !["python3", "getent", "nc", "timeout"].iter().all(|c| have(c)) {
        // tests/run.sh installs them (tests/lab/deps.sh) and sets MIGREADY_REQUIRE_SSHD: CI never skips.
        assert!(std::env::var_os("MIGREADY_REQUIRE_SSHD").is_none(), "needs python3, getent, nc and timeout in /usr/bin");
        eprintln!("SKIP engines_agree_on_real_sockets: needs python3, getent, nc and timeout in /usr/bin");
        return;
    }
    let open = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let open_port = open.local_addr().unwrap().port();
    let closed_port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let peers = vec![
        ("127.0.0.1".to_string(), vec![open_port, closed_port]),
        ("no-such-host.invalid".to_string(), vec![49152]),
    ];
    let py = run_here(&peers, "auto");
    let sh = run_here(&peers, "sh");
    for raw in [&py, &sh] {
        let r = raw.get("resolve:127.0.0.1").expect("resolve record");
        assert_eq!(r.status, 0, "{r:?}");
        assert_eq!(addresses_of(&r.stdout), vec!["127.0.0.1".parse::<IpAddr>().unwrap()]);
        assert_ne!(raw.get("resolve:no-such-host.invalid").unwrap().status, 0);
        let open_rec = raw.get(&format!("port:127.0.0.1:{open_port}")).unwrap();
        let closed_rec = raw.get(&format!("port:127.0.0.1:{closed_port}")).unwrap();
        assert_eq!(port_state(open_rec.status, &open_rec.stderr), PortState::Reachable, "{open_rec:?}");
        assert_eq!(port_state(closed_rec.status, &closed_rec.stderr), PortState::Reachable, "{closed_rec:?}");
        let unresolved = raw.get("port:no-such-host.invalid:49152").unwrap();
        assert!(matches!(port_state(unresolved.status, &unresolved.stderr), PortState::Error(_)), "{unresolved:?}");
        // Port 1 of this machine: nothing speaks libvirt there.
        assert_ne!(raw.get("qemu-tcp:127.0.0.1").unwrap().status, 0);
    }
    // The Python engine really ran (its wording), and the sh engine when forced.
    assert!(py.get(&format!("port:127.0.0.1:{open_port}")).unwrap().stderr.contains("succeeded"));
    assert!(py.get(&format!("port:127.0.0.1:{closed_port}")).unwrap().stderr.starts_with("connect to 127.0.0.1 (127.0.0.1)"));
    assert!(sh.get(&format!("port:127.0.0.1:{closed_port}")).unwrap().stderr.starts_with("nc: "));
    drop(open);
}

/// Hostile peer names (the inventory refuses them; the engine must not rely on
/// that): each stays one word in MESH_PEERS and in every probe command of the sh
/// engine, after `--` where it is an operand, and nothing in it runs. The tools
/// are stand-ins (shell functions) that print the words they were given.
#[test]
fn hostile_peer_names_stay_one_word_in_the_sh_engine() {
    let marker = std::env::temp_dir().join(format!("migready-mesh-pwned-{}", std::process::id()));
    let m = marker.display().to_string();
    let names: Vec<String> = vec![
        "-oProxyCommand=x".into(),
        "--".into(),
        "-n".into(),
        format!("$(touch${{IFS}}{m})"),
        format!("`touch${{IFS}}{m}`"),
        format!(";touch${{IFS}}{m};"),
        format!("'$(touch${{IFS}}{m})'"),
        "a\"b".into(),
        "a\\b".into(),
        "*".into(),
        "~".into(),
        "ünïcödé".into(),
        "cmp1.example.com".into(),
    ];
    let peers: Vec<(String, Vec<u16>)> = names.iter().map(|n| (n.clone(), vec![49152])).collect();
    let script = script_with(&peers, 16509, "sh");

    // MESH_PEERS as sh reads it: exactly the lines migready meant.
    let header = &script[..script.find("\n# migready mesh probe").unwrap() + 1];
    let out = std::process::Command::new("sh").arg("-c").arg(format!("{header}printf %s \"$MESH_PEERS\"")).output().unwrap();
    let expected: Vec<String> = names.iter().map(|n| format!("{n} 49152")).collect();
    assert_eq!(String::from_utf8(out.stdout).unwrap(), expected.join("\n"));

    // The whole sh engine, with stand-ins for the tools it runs.
    let stubs = "args() { for a in \"$@\"; do printf '[%s]' \"$a\"; done; }\n\
                 getent() { args \"$@\"; }\n\
                 virsh() { args \"$@\"; }\n\
                 nc() { args \"$@\"; }\n\
                 timeout() { shift; \"$@\"; }\n";
    let mut child = std::process::Command::new("sh")
        .arg("-s")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(stubs.as_bytes()).unwrap();
        stdin.write_all(script.as_bytes()).unwrap();
    }
    let out = child.wait_with_output().unwrap();
    let raw = RawFacts::parse_bytes(&out.stdout).expect("records");
    for n in &names {
        let get = |key: &str| raw.get(key).unwrap_or_else(|| panic!("no record {key}")).stdout.clone();
        assert_eq!(get(&format!("resolve:{n}")), format!("[ahosts][--][{n}]"), "{n:?}");
        assert_eq!(get(&format!("qemu-tcp:{n}")), format!("[-c][qemu+tcp://{n}:16509/system][hostname]"), "{n:?}");
        assert_eq!(get(&format!("port:{n}:49152")), format!("[-z][-v][-w][5][--][{n}][49152]"), "{n:?}");
    }
    let ran = marker.exists();
    let _ = std::fs::remove_file(&marker);
    assert!(!ran, "a peer name ran a command");

    // Names no line can carry are left out, not split into other peers.
    let s = script_with(&[("a b".into(), vec![1]), ("c\nd".into(), vec![2]), (String::new(), vec![3]), ("ok".into(), vec![4])], 16509, "sh");
    assert!(s.contains("\nMESH_PEERS='ok 4'\n"), "{s}");
}

/// The address Nova hands the source for a destination: its live_migration_inbound_addr
/// (or [DEFAULT] host) where set, probed under that address; a wrong one is named with
/// what it resolved to and whose address that is, and is not fixed.
#[test]
fn nova_address_per_peer() {
    let (specs, mut facts) = hosts();
    let mut r = raw("trixie-socket");
    crate::checks::testutil::edit(&mut r, "nova_conf", |t| t.replacen("[libvirt]\n", "[libvirt]\nlive_migration_inbound_addr = cmp2-mig.example\n", 1));
    facts[1] = HostFacts::from_raw(r);
    let views: Vec<HostView> = specs.iter().zip(&facts).map(|(spec, facts)| HostView { spec, facts }).collect();
    let (addr, why) = nova_address(&views[1]).unwrap();
    assert_eq!(addr, "cmp2-mig.example");
    assert!(why.starts_with("its live_migration_inbound_addr, /etc/nova/nova.conf:") && why.ends_with(": live_migration_inbound_addr = cmp2-mig.example"), "{why}");
    let refused = |h: &str, p: u16| rec(1, "", &format!("nc: connect to {h} (198.18.42.12) port {p} (tcp) failed: Connection refused"));
    let at_name = [
        ("resolve:cmp2", rec(0, "198.18.42.12    STREAM cmp2\n", "")),
        ("qemu-tcp:cmp2", rec(0, "cmp2\n", "")),
        ("port:cmp2:49152", refused("cmp2", 49152)),
    ];
    // It resolves to cmp3's address on cmp1: named, failed, not fixed.
    let mut records = at_name.to_vec();
    records.extend([
        ("resolve:cmp2-mig.example", rec(0, "198.18.42.13    STREAM cmp2-mig.example\n", "")),
        ("qemu-tcp:cmp2-mig.example", rec(0, "cmp3\n", "")),
        ("port:cmp2-mig.example:49152", refused("cmp2-mig.example", 49152)),
    ]);
    let f = judge(&views[0], &views[1], &probe_records(&records), 16509, &views);
    assert_eq!(f.iter().map(|f| f.status).collect::<Vec<_>>(), vec![Status::Pass, Status::Pass, Status::Pass, Status::Fail], "{f:#?}");
    let m = &f[3].message;
    assert!(m.starts_with("Nova hands cmp1 cmp2-mig.example for cmp2 (its live_migration_inbound_addr, /etc/nova/nova.conf:"), "{m}");
    assert!(m.contains("probed at cmp2-mig.example: cmp2-mig.example resolves to 198.18.42.13 on cmp1, which is cmp3's, not to an address of cmp2"), "{m}");
    assert!(m.contains("answers as cmp3, not cmp2") && m.contains("Not changed by fix: set live_migration_inbound_addr on cmp2"), "{m}");
    assert!(f[3].evidence.iter().any(|e| e == "on cmp1: getent ahosts cmp2-mig.example: 198.18.42.13"), "{:?}", f[3].evidence);
    // It does not resolve at all.
    let mut records = at_name.to_vec();
    records.extend([
        ("resolve:cmp2-mig.example", rec(2, "", "")),
        ("qemu-tcp:cmp2-mig.example", rec(1, "", "error: Unable to resolve address 'cmp2-mig.example' service '16509': Name or service not known\n")),
        ("port:cmp2-mig.example:49152", rec(1, "", "nc: getaddrinfo for host \"cmp2-mig.example\" port 49152: Name or service not known")),
    ]);
    let f = judge(&views[0], &views[1], &probe_records(&records), 16509, &views);
    assert_eq!(f[3].status, Status::Fail);
    assert!(f[3].message.contains("cmp2-mig.example does not resolve on cmp1"), "{}", f[3].message);
    // It resolves to cmp2 and answers there: passes.
    let mut records = at_name.to_vec();
    records.extend([
        ("resolve:cmp2-mig.example", rec(0, "198.18.42.12    STREAM cmp2-mig.example\n", "")),
        ("qemu-tcp:cmp2-mig.example", rec(0, "cmp2\n", "")),
        ("port:cmp2-mig.example:49152", refused("cmp2-mig.example", 49152)),
    ]);
    let f = judge(&views[0], &views[1], &probe_records(&records), 16509, &views);
    assert_eq!(f[3].status, Status::Pass, "{:?}", f[3]);
    // A value no probe may carry: failed, never probed.
    let mut r = raw("trixie-socket");
    crate::checks::testutil::edit(&mut r, "nova_conf", |t| t.replacen("[DEFAULT]\n", "[DEFAULT]\nhost = -oProxy=x\n", 1));
    facts[1] = HostFacts::from_raw(r);
    let views: Vec<HostView> = specs.iter().zip(&facts).map(|(spec, facts)| HostView { spec, facts }).collect();
    let f = judge(&views[0], &views[1], &probe_records(&at_name), 16509, &views);
    assert!(f[3].status == Status::Fail && f[3].message.contains("-oProxy=x for cmp2 (its service host name, no live_migration_inbound_addr;") && f[3].message.contains("not a host name or IP address"), "{:?}", f[3]);
    // No nova configuration: skipped.
    let mut r = raw("trixie-socket");
    r.records.remove("nova_conf");
    r.records.remove("nova_compute_conf");
    facts[1] = HostFacts::from_raw(r);
    let views: Vec<HostView> = specs.iter().zip(&facts).map(|(spec, facts)| HostView { spec, facts }).collect();
    let f = judge(&views[0], &views[1], &probe_records(&at_name), 16509, &views);
    assert_eq!((f[3].status, f[3].message.as_str()), (Status::Skip, "cmp2 has no nova configuration: not a Nova compute"));
}

/// Nova's shared storage test, its three scripts run for real here: two directories
/// (not shared), then one directory as both hosts' instances path (shared).
#[test]
fn shared_instances_scripts_and_verdicts() {
    let sh = |script: &str| -> Result<String, String> {
        let out = std::process::Command::new("sh").arg("-c").arg(script).output().unwrap();
        if out.status.success() { Ok(String::from_utf8_lossy(&out.stdout).into_owned()) } else { Err(String::from_utf8_lossy(&out.stderr).trim().to_string()) }
    };
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = (tmp.path().join("a dir"), tmp.path().join("b"));
    std::fs::create_dir_all(&a).unwrap();
    std::fs::create_dir_all(&b).unwrap();
    let (a, b) = (a.to_str().unwrap(), b.to_str().unwrap());
    // A file a killed run left 20 minutes ago is removed; a fresh one is not.
    let stale = format!("{b}/.migready-shared-test-old-cmp9");
    std::fs::write(&stale, "").unwrap();
    let old = std::time::SystemTime::now() - std::time::Duration::from_secs(1200);
    std::fs::File::options().write(true).open(&stale).unwrap().set_modified(old).unwrap();
    let file = shared::file_name("0badf00d", "cmp2");
    let verdict = |my_dir: &str, peer_dir: &str| {
        let created = sh(&shared::create_script(peer_dir, &file));
        let looked = sh(&shared::look_script(my_dir, std::slice::from_ref(&file)));
        let removed = sh(&shared::remove_script(created.as_ref().unwrap().trim()));
        let o = shared::judge(&shared::PairRun { me: "cmp1", peer: "cmp2", my_dir, peer_dir, created: &created, looked: &looked, removed: &removed, file: &file });
        assert!(std::fs::read_dir(peer_dir).unwrap().all(|e| !e.unwrap().file_name().to_string_lossy().contains("0badf00d")), "the test file is left");
        o
    };
    let o = verdict(a, b);
    assert_eq!(o.status, Status::Pass, "{o:?}");
    assert_eq!(o.message, format!("a file made in cmp2's instances path {b} is not seen in cmp1's {a}: not shared (Nova's own test)"));
    assert_eq!(o.evidence, [format!("on cmp2: made {b}/{file}"), format!("on cmp1: test -e {a}/{file}: not found"), format!("on cmp2: removed {b}/{file}")]);
    assert!(!std::path::Path::new(&stale).exists(), "a stale test file stays");
    let o = verdict(b, b);
    assert_eq!(o.status, Status::Fail, "{o:?}");
    assert!(o.message.starts_with(&format!("cmp1's instances path {b} is shared with cmp2's {b}: a file made on cmp2 is seen on cmp1 (Nova's own test)")), "{}", o.message);
    // No such directory on the peer: the test cannot run, said so.
    let missing = format!("{b}/nope");
    let created = sh(&shared::create_script(&missing, &file));
    let o = shared::judge(&shared::PairRun { me: "cmp1", peer: "cmp2", my_dir: a, peer_dir: &missing, created: &created, looked: &Ok(String::new()), removed: &Ok(String::new()), file: &file });
    assert_eq!(o.status, Status::Warn);
    assert!(o.message.ends_with(&format!("no such directory: {missing}")), "{}", o.message);
    // Not removed: failed, and the evidence says so.
    let o = shared::judge(&shared::PairRun { me: "cmp1", peer: "cmp2", my_dir: a, peer_dir: b, created: &Ok(format!("{b}/{file}\n")), looked: &Ok(format!("absent {file}\n")), removed: &Err("connection lost".into()), file: &file });
    assert_eq!(o.status, Status::Fail);
    assert!(o.evidence.last().unwrap().starts_with("on cmp2: NOT removed"), "{o:?}");
}
