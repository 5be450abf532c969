//! The CA over real keys and certificates (rcgen to make them, x509-parser to read
//! them back, openssl to verify them where it is installed).

use super::*;
use crate::checks::testutil::{raw, spec};

#[test]
fn init_writes_a_ca_key_only_the_owner_reads_and_refuses_to_overwrite() {
    let dir = tempfile::tempdir().unwrap();
    let ca_dir = dir.path().join("ca");
    let (cert, key) = init(&ca_dir).unwrap();
    assert_eq!(std::fs::metadata(&key).unwrap().permissions().mode() & 0o777, 0o600);
    assert_eq!(std::fs::metadata(&ca_dir).unwrap().permissions().mode() & 0o777, 0o700);
    let info = read_cert(&std::fs::read_to_string(&cert).unwrap()).unwrap();
    assert!(info.is_ca && info.subject.contains("migready CA"), "{info:?}");
    assert!(info.not_after - info.not_before > 3600 * 24 * 3000);
    let key_before = std::fs::read(&key).unwrap();
    let e = init(&ca_dir).unwrap_err();
    assert!(e.contains("exists: a CA is already there"), "{e}");
    assert_eq!(std::fs::read(&key).unwrap(), key_before, "the key was overwritten");
    Ca::load(&cert, &key).unwrap();
    // A key others can read is refused, and the message carries no key material.
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let e = Ca::load(&cert, &key).err().unwrap();
    assert!(e.contains("mode 0644: a CA key must not be readable by group or others"), "{e}");
    assert!(!e.contains("PRIVATE KEY"));
}

#[test]
fn an_operators_ca_whose_key_is_not_its_certificates_is_refused() {
    // Two CAs: one's certificate with the other's key cannot sign for it; a host
    // certificate would not verify against the CA the hosts get.
    let dir = tempfile::tempdir().unwrap();
    let (cert_a, key_a) = init(&dir.path().join("a")).unwrap();
    let (cert_b, key_b) = init(&dir.path().join("b")).unwrap();
    Ca::load(&cert_b, &key_b).unwrap();
    let e = Ca::load(&cert_a, &key_b).err().unwrap();
    assert!(e.contains("do not belong together (the key is not the certificate's)") && e.contains(&*cert_a.to_string_lossy()), "{e}");
    assert!(!e.contains("PRIVATE KEY"), "{e}");
    // A host certificate (not a CA) with a matching key is refused too.
    let ca = Ca::load(&cert_a, &key_a).unwrap();
    let host = ca.issue("cmp1", &["cmp1".to_string()], Kind::Server, 30).unwrap();
    std::fs::write(dir.path().join("host.pem"), &host.cert_pem).unwrap();
    let e = Ca::load(&dir.path().join("host.pem"), &key_a).err().unwrap();
    assert!(e.contains("not a CA certificate"), "{e}");
}

#[test]
fn a_host_certificate_covers_its_names_and_verifies_against_the_ca() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = init(dir.path()).unwrap();
    let ca = Ca::load(&cert, &key).unwrap();
    let names = vec!["cmp1".to_string(), "cmp1.example.org".into(), "198.18.42.11".into(), "fd42:42::11".into()];
    let s = ca.issue("cmp1", &names, Kind::Server, HOST_DAYS).unwrap();
    let info = read_cert(&s.cert_pem).unwrap();
    assert_eq!(info.names, names);
    assert!(info.server_auth && !info.client_auth && !info.is_ca, "{info:?}");
    assert!(info.subject.contains("CN=cmp1") && info.issuer.contains("migready CA"), "{info:?}");
    verifies_against(&s.cert_pem, &ca.cert_pem).unwrap();
    assert!(s.key_pem.contains("PRIVATE KEY") && !format!("{s:?}").contains("PRIVATE KEY"), "Debug must not show the key");
    let c = ca.issue("cmp1", &names[..1], Kind::Client, HOST_DAYS).unwrap();
    assert!(read_cert(&c.cert_pem).unwrap().client_auth);
    // Another CA's certificate does not verify.
    let other = tempfile::tempdir().unwrap();
    let (oc, ok) = init(other.path()).unwrap();
    let e = verifies_against(&s.cert_pem, &Ca::load(&oc, &ok).unwrap().cert_pem).unwrap_err();
    assert!(e.contains("signature does not verify"), "{e}");
    // openssl agrees, where it is installed (GnuTLS, which libvirt uses, reads the same).
    if std::process::Command::new("openssl").arg("version").output().is_ok() {
        let p = dir.path().join("server.pem");
        std::fs::write(&p, &s.cert_pem).unwrap();
        let out = std::process::Command::new("openssl").args(["verify", "-CAfile"]).arg(&cert).arg("-purpose").arg("sslserver").arg(&p).output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    }
    // A name that cannot be a DNS name is an error naming it.
    assert!(ca.issue("x", &["bad name".into()], Kind::Server, 1).unwrap_err().contains("\"bad name\""));
}

#[test]
fn the_names_peers_use() {
    let mut r = raw("bookworm-socket");
    crate::checks::testutil::edit(&mut r, "nova_conf", |t| t.replacen("[libvirt]\n", "[libvirt]\nlive_migration_inbound_addr = cmp1-migration.example.org\n", 1));
    let f = HostFacts::from_raw(r);
    let mut s = spec("cmp1", "198.18.42.11");
    s.name = "compute-1".into();
    let names = host_names(&s, &f);
    assert_eq!(names[..2], ["compute-1".to_string(), "198.18.42.11".into()]);
    assert!(names.contains(&"cmp1".to_string()), "{names:?}");
    assert_eq!(names.last().unwrap(), "cmp1-migration.example.org");
    assert!(!names.iter().any(|n| n.starts_with("127.") || n == "::1" || n.starts_with("fe80")), "{names:?}");
    assert_eq!(names.iter().filter(|n| *n == "198.18.42.11").count(), 1, "{names:?}");
}
