use super::*;

#[test]
fn pairs_from_the_command_line() {
    assert_eq!(parse_pair("cmp1:cmp2").unwrap(), ("cmp1".to_string(), "cmp2".to_string()));
    assert!(parse_pair("cmp1").is_err());
    assert!(parse_pair(":cmp2").is_err());
    assert!(parse_pair("a:b:c").is_err());
}

#[test]
fn job_values_from_virsh() {
    let job = "Job type:         Completed   \nOperation:        Incoming migration\nTime elapsed:     744          ms\n\
               Data processed:   778.270 KiB\nMemory processed: 778.270 KiB\nTotal downtime:   40           ms\n\
               Downtime w/o network: 38           ms\n";
    assert_eq!(virsh_value(job, "Total downtime"), Some(40.0));
    assert_eq!(virsh_value(job, "Memory processed"), Some(778.270 * 1024.0));
    assert_eq!(virsh_value(job, "Disk processed"), None);
}

#[test]
fn overlay_bytes_from_qemu_img_map() {
    let map = r#"[{ "start": 0, "length": 8388608, "depth": 1, "present": false, "zero": true, "data": false, "compressed": false},
{ "start": 8388608, "length": 2097152, "depth": 0, "present": true, "zero": false, "data": true, "compressed": false, "offset": 327680},
{ "start": 10485760, "length": 56623104, "depth": 1, "present": false, "zero": true, "data": false, "compressed": false}]"#;
    assert_eq!(overlay_data_bytes(map), Some(2 << 20));
    assert_eq!(overlay_data_bytes("nonsense"), None);
}

#[test]
fn failures_name_the_port_range() {
    let e = "unable to execute QEMU command 'blockdev-add': Failed to connect to 'cmp3:49153': No route to host";
    let m = explain(e, "cmp1", "cmp3", (49152, 49215), 16509, None);
    assert_eq!(
        m,
        "QEMU on cmp1 could not connect to cmp3's migration port 49153 (No route to host): cmp3's migration port range TCP 49152-49215 \
         (qemu.conf migration_port_min/max) must be open to cmp1"
    );
    let e = "unable to connect to server at 'cmp3:16509': Connection refused";
    assert!(explain(e, "cmp1", "cmp3", (49152, 49215), 16509, None).starts_with("cmp1's libvirtd could not connect to cmp3's libvirt (qemu+tcp://cmp3:16509/system)"));
    let ports = Finding { id: mesh::MIGRATION_PORTS, status: Status::Fail, message: "cmp3's QEMU migration port range TCP 49152-49215 is filtered from cmp1".into(), evidence: vec![] };
    let m = explain("operation failed: job 'migration out' failed", "cmp1", "cmp3", (49152, 49215), 16509, Some(&ports));
    assert!(m.contains("mesh.migration-ports: cmp3's QEMU migration port range TCP 49152-49215"), "{m}");
}

#[test]
fn guest_definition() {
    let x = guest_xml("migready-test-0a1b2c3d-0", "pc-i440fx-7.2", "/var/lib/nova/instances/migready-test-0a1b2c3d-0/disk");
    assert!(x.contains("<name>migready-test-0a1b2c3d-0</name>"));
    assert!(x.contains("machine='pc-i440fx-7.2'"));
    assert!(x.contains("<source file='/var/lib/nova/instances/migready-test-0a1b2c3d-0/disk'/>"));
    assert!(!x.contains("{{"), "{x}");
    let s = guest_script("cleanup", "migready-test-x", "/var/lib/nova/instances", 0xab, None);
    assert!(s.starts_with("ACTION=cleanup\nNAME=migready-test-x\nINSTANCES=/var/lib/nova/instances\nSIZE_MIB=64\nPATTERN=0xab\n"), "{s}");
}

/// The variables before templates/guest.sh hold what they were given, whatever the
/// host's instances_path says: run through a real sh, nothing in them runs.
#[test]
fn guest_script_variables_survive_hostile_paths() {
    for instances in crate::shell::tests::HOSTILE.iter().filter(|w| !w.is_empty()).map(|w| format!("/var/lib/{w}")) {
        let s = guest_script("verify", "migready-test-x", &instances, 0, None);
        let header = &s[..s.find("SIZE_MIB=").unwrap()];
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(format!("{header}printf '%s|%s' \"$NAME\" \"$INSTANCES\""))
            .output()
            .unwrap();
        assert_eq!(String::from_utf8(out.stdout).unwrap(), format!("migready-test-x|{instances}"), "{instances:?}");
    }
    assert!(!std::path::Path::new("/tmp/migready-shell-test-pwned").exists());
}

#[test]
fn virsh_migrate_over_ssh_command_line() {
    assert_eq!(
        migrate::migrate_command("migready-test-x", "qemu+tcp://cmp2:16509/system", 0, false),
        "virsh migrate --live --p2p --copy-storage-inc --undefinesource --persistent migready-test-x qemu+tcp://cmp2:16509/system"
    );
    assert_eq!(
        migrate::migrate_command("migready-test-x", "qemu+tcp://[fd42::12]:16509/system", 100, false),
        "virsh migrate --live --p2p --copy-storage-inc --undefinesource --persistent --bandwidth 100 migready-test-x 'qemu+tcp://[fd42::12]:16509/system'"
    );
    assert_eq!(
        migrate::migrate_command("migready-test-x", "qemu+tls://cmp2/system", 0, true),
        "virsh migrate --live --p2p --copy-storage-inc --undefinesource --persistent --tls migready-test-x qemu+tls://cmp2/system"
    );
}

#[test]
fn libvirt_uris() {
    assert_eq!(tcp_uri("198.18.42.11", 16509), "qemu+tcp://198.18.42.11:16509/system");
    assert_eq!(tcp_uri("cmp2", 16509), "qemu+tcp://cmp2:16509/system");
    assert_eq!(tcp_uri("[fd00::1]", 16509), "qemu+tcp://[fd00::1]:16509/system");
    assert_eq!(tcp_uri("fd00::1", 1), "qemu+tcp://[fd00::1]:1/system");
    assert_eq!(tls_uri("cmp2"), "qemu+tls://cmp2/system");
    assert_eq!(tls_uri("[fd00::1]"), "qemu+tls://[fd00::1]/system");
}
