//! The certificate authority for `transport = "tls"` (issue 12): `migready ca init`
//! makes one (an ECDSA P-256 key and a self-signed CA certificate, rcgen); [`Ca::load`]
//! reads it, or an operator's CA, and issues per host a server and a client
//! certificate whose names cover what peers use (see [`host_names`]). The CA key stays
//! on the control node: written mode 0600 from its creation, refused when group or
//! others can read it, never sent anywhere. Certificates are read back with x509-parser.

use crate::facts::HostFacts;
use crate::inventory::HostSpec;
use rcgen::{BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose, SanType};
use std::io::Write;
use std::net::IpAddr;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// File names in a CA directory made by `migready ca init`.
pub const CA_CERT: &str = "cacert.pem";
pub const CA_KEY: &str = "cakey.pem";

/// How long a CA made by `ca init` is valid.
const CA_DAYS: u64 = 3650;
/// How long a host certificate is valid.
pub const HOST_DAYS: u64 = 365;

/// A CA: its certificate (PEM, what hosts get as /etc/pki/CA/cacert.pem) and key.
pub struct Ca {
    pub cert_pem: String,
    key: KeyPair,
}

/// What a host certificate is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// libvirt's and QEMU's server side (servercert.pem, server-cert.pem).
    Server,
    /// The side that connects to a peer (clientcert.pem, client-cert.pem).
    Client,
}

/// A certificate and its private key, PEM. The key is a secret: never printed, logged
/// or put in a diff or JSON.
pub struct Issued {
    pub cert_pem: String,
    pub key_pem: String,
}

impl std::fmt::Debug for Issued {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Issued").field("cert_pem", &self.cert_pem).field("key_pem", &"(secret)").finish()
    }
}

fn now_plus(days: u64) -> time::OffsetDateTime {
    time::OffsetDateTime::now_utc() + Duration::from_secs(days * 86_400)
}

/// `migready ca init`: a new CA in `dir` (created mode 0700 if missing). Refuses when
/// either file exists. Returns the two paths written.
pub fn init(dir: &Path) -> Result<(PathBuf, PathBuf), String> {
    if !dir.exists() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    }
    let (cert_path, key_path) = (dir.join(CA_CERT), dir.join(CA_KEY));
    for p in [&cert_path, &key_path] {
        if p.exists() {
            return Err(format!("{} exists: a CA is already there (remove it first to make a new one; hosts trust the old one)", p.display()));
        }
    }
    let key = KeyPair::generate().map_err(|e| format!("generating the CA key: {e}"))?;
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::OrganizationName, "migready");
    dn.push(DnType::CommonName, "migready CA");
    params.distinguished_name = dn;
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
    params.not_before = time::OffsetDateTime::now_utc() - Duration::from_secs(3600);
    params.not_after = now_plus(CA_DAYS);
    let cert = params.self_signed(&key).map_err(|e| format!("signing the CA certificate: {e}"))?;
    // The key first, created 0600 (never readable by others, not even for a moment).
    write_new(&key_path, key.serialize_pem().as_bytes(), 0o600)?;
    if let Err(e) = write_new(&cert_path, cert.pem().as_bytes(), 0o644) {
        let _ = std::fs::remove_file(&key_path);
        return Err(e);
    }
    Ok((cert_path, key_path))
}

fn write_new(path: &Path, bytes: &[u8], mode: u32) -> Result<(), String> {
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .map_err(|e| format!("cannot create {}: {e}", path.display()))?;
    f.write_all(bytes).and_then(|_| f.sync_all()).map_err(|e| format!("cannot write {}: {e}", path.display()))
}

impl Ca {
    /// Reads a CA certificate and key (a `ca init` directory's, or an operator's). The key
    /// file must not be readable by group or others.
    pub fn load(cert_path: &Path, key_path: &Path) -> Result<Ca, String> {
        let meta = std::fs::metadata(key_path).map_err(|e| format!("{}: {e}", key_path.display()))?;
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(format!("{}: mode {mode:04o}: a CA key must not be readable by group or others (chmod 600)", key_path.display()));
        }
        let key_pem = std::fs::read_to_string(key_path).map_err(|e| format!("{}: {e}", key_path.display()))?;
        // The key's text never goes into a message.
        let key = KeyPair::from_pem(&key_pem).map_err(|_| format!("{}: not a PEM private key rcgen can sign with (PKCS#8 ECDSA, Ed25519 or RSA)", key_path.display()))?;
        let cert_pem = std::fs::read_to_string(cert_path).map_err(|e| format!("{}: {e}", cert_path.display()))?;
        let ca = Ca { cert_pem, key };
        let info = read_cert(&ca.cert_pem).map_err(|e| format!("{}: {e}", cert_path.display()))?;
        if !info.is_ca {
            return Err(format!("{}: not a CA certificate (basicConstraints CA:FALSE or absent)", cert_path.display()));
        }
        if info.public_key_der != ca.key.public_key_raw() {
            return Err(format!("{} and {} do not belong together (the key is not the certificate's)", cert_path.display(), key_path.display()));
        }
        Ok(ca)
    }

    /// A certificate for `host` (its CN) covering `names` (DNS names and IP addresses),
    /// valid from an hour ago for `days`, signed by this CA, with a fresh key.
    pub fn issue(&self, host: &str, names: &[String], kind: Kind, days: u64) -> Result<Issued, String> {
        let now = time::OffsetDateTime::now_utc();
        self.issue_valid(host, names, kind, now - Duration::from_secs(3600), now_plus(days))
    }

    /// [`Ca::issue`] with the validity given (tests make expired certificates with it).
    pub fn issue_valid(&self, host: &str, names: &[String], kind: Kind, not_before: time::OffsetDateTime, not_after: time::OffsetDateTime) -> Result<Issued, String> {
        let issuer = Issuer::from_ca_cert_pem(&self.cert_pem, &self.key).map_err(|e| format!("the CA certificate: {e}"))?;
        let mut params = CertificateParams::default();
        let mut dn = DistinguishedName::new();
        dn.push(DnType::OrganizationName, "migready");
        dn.push(DnType::CommonName, host);
        params.distinguished_name = dn;
        params.subject_alt_names = names
            .iter()
            .map(|n| match n.parse::<IpAddr>() {
                Ok(ip) => Ok(SanType::IpAddress(ip)),
                Err(_) if !is_dns_name(n) => Err(format!("{n:?} cannot be a DNS name in a certificate (letters, digits, '-' and '.')")),
                Err(_) => n.as_str().try_into().map(SanType::DnsName).map_err(|e| format!("{n:?} cannot be a DNS name in a certificate: {e}")),
            })
            .collect::<Result<_, _>>()?;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature, KeyUsagePurpose::KeyEncipherment];
        params.extended_key_usages = vec![match kind {
            Kind::Server => ExtendedKeyUsagePurpose::ServerAuth,
            Kind::Client => ExtendedKeyUsagePurpose::ClientAuth,
        }];
        params.use_authority_key_identifier_extension = true;
        params.not_before = not_before;
        params.not_after = not_after;
        let key = KeyPair::generate().map_err(|e| format!("generating a key for {host}: {e}"))?;
        let cert = params.signed_by(&key, &issuer).map_err(|e| format!("signing {host}'s certificate: {e}"))?;
        Ok(Issued { cert_pem: cert.pem(), key_pem: key.serialize_pem() })
    }
}

/// What a certificate says, as the checks need it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertInfo {
    pub subject: String,
    pub issuer: String,
    /// DNS names and IP addresses of subjectAltName, as text.
    pub names: Vec<String>,
    pub not_before: i64,
    pub not_after: i64,
    pub is_ca: bool,
    pub server_auth: bool,
    pub client_auth: bool,
    pub public_key_der: Vec<u8>,
}

/// Parses the first certificate of a PEM text.
pub fn read_cert(pem: &str) -> Result<CertInfo, String> {
    let (_, p) = x509_parser::pem::parse_x509_pem(pem.as_bytes()).map_err(|e| format!("not a PEM certificate: {e}"))?;
    let c = p.parse_x509().map_err(|e| format!("not an X.509 certificate: {e}"))?;
    let names = match c.subject_alternative_name() {
        Ok(Some(san)) => san
            .value
            .general_names
            .iter()
            .filter_map(|g| match g {
                x509_parser::extensions::GeneralName::DNSName(d) => Some(d.to_string()),
                x509_parser::extensions::GeneralName::IPAddress(b) => match b.len() {
                    4 => Some(IpAddr::from(<[u8; 4]>::try_from(*b).ok()?).to_string()),
                    16 => Some(IpAddr::from(<[u8; 16]>::try_from(*b).ok()?).to_string()),
                    _ => None,
                },
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    };
    let eku = c.extended_key_usage().ok().flatten().map(|e| (e.value.server_auth, e.value.client_auth)).unwrap_or((false, false));
    Ok(CertInfo {
        subject: c.subject().to_string(),
        issuer: c.issuer().to_string(),
        names,
        not_before: c.validity().not_before.timestamp(),
        not_after: c.validity().not_after.timestamp(),
        is_ca: c.is_ca(),
        server_auth: eku.0,
        client_auth: eku.1,
        public_key_der: c.public_key().subject_public_key.data.to_vec(),
    })
}

/// Whether the first certificate of `cert_pem` carries a valid signature of the first
/// certificate of `ca_pem` (the chain migready issues: host certificate, then the CA).
pub fn verifies_against(cert_pem: &str, ca_pem: &str) -> Result<(), String> {
    let (_, p) = x509_parser::pem::parse_x509_pem(cert_pem.as_bytes()).map_err(|e| format!("not a PEM certificate: {e}"))?;
    let c = p.parse_x509().map_err(|e| format!("not an X.509 certificate: {e}"))?;
    let (_, q) = x509_parser::pem::parse_x509_pem(ca_pem.as_bytes()).map_err(|e| format!("the CA: not a PEM certificate: {e}"))?;
    let ca = q.parse_x509().map_err(|e| format!("the CA: not an X.509 certificate: {e}"))?;
    if c.issuer() != ca.subject() {
        return Err(format!("issued by {}, not by the CA {}", c.issuer(), ca.subject()));
    }
    c.verify_signature(Some(ca.public_key())).map_err(|e| format!("its signature does not verify with the CA's key: {e}"))
}

/// The names a host's certificates must cover: what peers may use to reach it. Its
/// inventory name and address, its hostname (short and as the facts give it), its
/// addresses (not loopback or link-local), and Nova's `live_migration_inbound_addr`.
/// In order, without repeats (case-insensitive for names).
pub fn host_names(spec: &HostSpec, facts: &HostFacts) -> Vec<String> {
    let mut v: Vec<String> = Vec::new();
    let mut add = |s: &str| {
        let s = s.trim().trim_start_matches('[').trim_end_matches(']').trim_end_matches('.');
        if !s.is_empty() && !v.iter().any(|x| x.eq_ignore_ascii_case(s)) {
            v.push(s.to_string());
        }
    };
    add(&spec.name);
    add(&spec.address);
    if let Some(h) = facts.hostname.as_deref() {
        add(h);
        if let Some((short, _)) = h.split_once('.') {
            add(short);
        }
    }
    for a in facts.addresses.iter().filter(|a| !a.is_loopback() && !is_link_local(a)) {
        add(&a.to_string());
    }
    if let Some((addr, _)) = facts.nova_option("libvirt", "live_migration_inbound_addr") {
        add(&addr);
    }
    v
}

/// RFC 1123 host name: labels of 1-63 letters, digits and '-', not starting or ending
/// with '-', 253 characters at most.
fn is_dns_name(s: &str) -> bool {
    s.len() <= 253
        && s.split('.').all(|l| !l.is_empty() && l.len() <= 63 && !l.starts_with('-') && !l.ends_with('-') && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'))
}

fn is_link_local(a: &IpAddr) -> bool {
    match a {
        IpAddr::V4(v) => v.is_link_local(),
        IpAddr::V6(v) => (v.segments()[0] & 0xffc0) == 0xfe80,
    }
}

#[cfg(test)]
mod tests;
