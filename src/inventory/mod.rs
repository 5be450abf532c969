//! The inventory: which compute hosts to audit, how to reach them over SSH,
//! which checks to skip, and the network policy the firewall checks expect.
//!
//! The inventory is a TOML file (see `inventory.example.toml`). It is read
//! with toml_edit's span-preserving [`Document`], so every error points at a
//! `FILE:LINE:COLUMN`. Loading is strict: unknown keys, wrong types and
//! out-of-range values are errors, and the first one found is returned. Host
//! names, addresses, users and sources are validated too (see `fields.rs`):
//! what reaches a remote shell, a libvirt URI or a firewall rule is a plain
//! word.
//!
//! An Ansible inventory (INI or YAML, `ansible.rs`) is read too: given as the
//! inventory itself, or named by the TOML's `[inventory] ansible`. `--limit`
//! patterns (`limit.rs`) then select hosts by name and group.

mod ansible;
mod fields;
mod limit;
mod ssh_config;

#[cfg(test)]
mod ansible_tests;

#[cfg(test)]
mod ssh_tests;
#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;

use toml_edit::{Document, Item, Table, TableLike, Value};

use crate::nova_release::NovaRelease;
use fields::{
    Lines, check_address, check_host_name, check_user, describe, expand_path, is_valid_source,
};
use ssh_config::{ConfigError, HopSpec, SshConfig, Tokens};

/// Default SSH user.
pub const DEFAULT_USER: &str = "root";
/// Default SSH port.
pub const DEFAULT_PORT: u16 = 22;
/// Default known_hosts file (before `~` expansion).
pub const DEFAULT_KNOWN_HOSTS: &str = "~/.ssh/known_hosts";
/// Default SSH connect timeout.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Default timeout for one remote command.
pub const DEFAULT_COMMAND_TIMEOUT: Duration = Duration::from_secs(60);
/// Default libvirtd TCP port (`tcp_port` in libvirtd.conf).
pub const DEFAULT_LIBVIRT_PORT: u16 = 16509;
/// libvirt's TLS port (`libvirtd-tls.socket`, `tls_port`): what `transport = "tls"` uses.
pub const LIBVIRT_TLS_PORT: u16 = 16514;
/// Largest accepted timeout, in seconds (one day).
pub const MAX_TIMEOUT_SECS: i64 = 86_400;
/// Default OpenSSH client configuration read for every host (before `~` expansion).
pub const DEFAULT_SSH_CONFIG: &str = "~/.ssh/config";
/// Most jump hosts on the way to one host.
pub const MAX_JUMPS: usize = 8;

/// A loaded, validated inventory.
#[derive(Debug, Clone, PartialEq)]
pub struct Inventory {
    /// The file the inventory was read from (as given to [`load`]).
    pub path: PathBuf,
    /// Hosts in file order, with `[defaults]` already applied. May be empty.
    pub hosts: Vec<HostSpec>,
    /// Check IDs not to run (from `checks.skip`), in file order, without
    /// duplicates. Every entry is one of the known check IDs.
    pub skip: Vec<String>,
    /// The `[policy]` table.
    pub policy: Policy,
    /// `[nova]`: which cloud Nova-side checks and `validate --nova` use.
    pub nova: NovaConf,
    /// `[tls]`: the CA fix issues host certificates from (transport tls).
    pub tls: TlsConf,
    /// Every group name the inventory declares (Ansible groups, TOML `groups`),
    /// sorted; `all` and `ungrouped` included. For `--limit`.
    pub groups: Vec<String>,
    /// What [`load`] read `path` as.
    pub format: Format,
}

pub use ansible::Format;

/// One compute host, with defaults applied and paths resolved.
#[derive(Debug, Clone, PartialEq)]
pub struct HostSpec {
    /// The name peers use for this host (libvirt URIs, /etc/hosts): an RFC 1123
    /// host name.
    pub name: String,
    /// Where SSH connects; defaults to `name`. A host name, an IPv4 address or
    /// an IPv6 address (without brackets, also when written with them).
    pub address: String,
    /// SSH port.
    pub port: u16,
    /// SSH user (POSIX portable user name); non-root users need passwordless sudo.
    pub user: String,
    /// Private key to offer, in addition to ssh-agent keys.
    pub identity_file: Option<PathBuf>,
    /// Host keys are verified against this file.
    pub known_hosts: PathBuf,
    /// Trust-on-first-use: add an unknown host key to `known_hosts` instead
    /// of failing. A changed key is always an error.
    pub accept_new_host_keys: bool,
    /// Timeout for establishing the SSH session.
    pub connect_timeout: Duration,
    /// Timeout for one remote command.
    pub command_timeout: Duration,
    /// Nova release set in the inventory, overriding detection.
    pub nova_release: Option<NovaRelease>,
    /// `transport` of this host's entry, overriding `[policy] transport`.
    pub transport: Option<Transport>,
    /// 1-based line of this host's `[[hosts]]` header (or, for a host of an
    /// Ansible inventory only, of its first line there), for messages.
    pub line: usize,
    /// The groups the host is in (Ansible groups with their ancestors, TOML
    /// `groups`), sorted, without `all` and `ungrouped`.
    pub groups: Vec<String>,
    /// What ssh_config and `proxy_jump` add: more keys, jump hosts.
    pub ssh: SshOptions,
}

/// What ssh_config and `proxy_jump` add to how a host is reached.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SshOptions {
    /// Keys named by ssh_config's `IdentityFile` lines, in order: offered when
    /// the inventory sets no `identity_file`.
    pub identity_files: Vec<PathBuf>,
    /// Jump hosts, the first one connected to directly; empty: SSH goes
    /// straight to the host.
    pub jumps: Vec<Jump>,
}

/// One jump host (`ProxyJump`, `proxy_jump`), with everything resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Jump {
    /// As written in the ProxyJump list (`ops@bastion:2222`), for messages.
    pub name: String,
    /// Where SSH connects (ssh_config's HostName for that name, else the name).
    pub address: String,
    pub port: u16,
    pub user: String,
    /// Keys to offer; empty: ssh-agent and the default `~/.ssh` keys.
    pub identity_files: Vec<PathBuf>,
    /// The jump host's key is verified against this file.
    pub known_hosts: PathBuf,
    /// Trust on first use for the jump host's key (a changed key is always an error).
    pub accept_new_host_keys: bool,
}

/// `[nova]`: a cloud of clouds.yaml (`cloud`), and the clouds.yaml to read it from
/// (`clouds_yaml`; default: the usual places, as openstack CLI looks).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NovaConf {
    pub cloud: Option<String>,
    pub clouds_yaml: Option<PathBuf>,
    /// The Glance image `validate --nova` boots (default `migready-lab-blank`).
    pub image: Option<String>,
}

/// `[tls]`: where the CA is that `fix` issues host certificates from under `transport =
/// "tls"`: `ca_dir` (a `migready ca init` directory: cacert.pem, cakey.pem; default
/// ~/.config/migready/ca), or an operator's CA as `ca_cert` and `ca_key`. The key stays
/// on the control node.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsConf {
    /// The CA certificate (None: no `[tls]` and no $HOME to default from).
    pub ca_cert: Option<PathBuf>,
    /// The CA key (mode 0600; never sent to a host).
    pub ca_key: Option<PathBuf>,
}

/// Where `[tls] ca_dir` defaults to.
pub const DEFAULT_CA_DIR: &str = "~/.config/migready/ca";

/// The `[policy]` table: what the libvirt/firewall checks expect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    /// Authentication expected on libvirtd's TCP socket.
    pub auth_tcp: AuthTcp,
    /// How peers reach libvirt and migrate: qemu+tcp (the seed's) or qemu+tls.
    pub transport: Transport,
    /// libvirtd TCP port.
    pub libvirt_port: u16,
    /// Addresses or CIDRs allowed to reach libvirt and the migration ports.
    /// Empty means only the peer hosts' addresses.
    pub allowed_sources: Vec<String>,
    /// Under transport tls, keep libvirt's TCP listener (`libvirt_port`) too; by default
    /// it is closed: qemu+tcp next to qemu+tls bypasses the certificates.
    pub keep_tcp: bool,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            auth_tcp: AuthTcp::None,
            transport: Transport::Tcp,
            libvirt_port: DEFAULT_LIBVIRT_PORT,
            allowed_sources: Vec::new(),
            keep_tcp: false,
        }
    }
}

/// The migration transport: libvirt over TCP (`qemu+tcp`, port `libvirt_port`, the seed's)
/// or over TLS (`qemu+tls`, port 16514, x509 certificates; migration streams in TLS).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Transport {
    #[default]
    Tcp,
    Tls,
}

impl Transport {
    /// The inventory's spelling, also the URI scheme's tail: `"tcp"` or `"tls"`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Transport::Tcp => "tcp",
            Transport::Tls => "tls",
        }
    }

    /// The libvirt port peers connect to under this transport.
    pub fn libvirt_port(&self, policy: &Policy) -> u16 {
        match self {
            Transport::Tcp => policy.libvirt_port,
            Transport::Tls => LIBVIRT_TLS_PORT,
        }
    }
}

/// Value of libvirtd's `auth_tcp` the checks expect.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AuthTcp {
    /// No authentication (`auth_tcp = "none"`).
    #[default]
    None,
    /// SASL authentication (`auth_tcp = "sasl"`).
    Sasl,
}

impl AuthTcp {
    /// The libvirtd.conf spelling: `"none"` or `"sasl"`.
    pub fn as_str(&self) -> &'static str {
        match self {
            AuthTcp::None => "none",
            AuthTcp::Sasl => "sasl",
        }
    }
}

impl fmt::Display for AuthTcp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An inventory that could not be loaded.
///
/// Displays as `path:line:column: message`, or `path: message` when there is
/// no position (I/O errors, where `line` and `column` are 0).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct InventoryError {
    /// The inventory file.
    pub path: PathBuf,
    /// 1-based line, or 0 when the error has no position.
    pub line: usize,
    /// 1-based column in characters, or 0 when the error has no position.
    pub column: usize,
    /// What is wrong, starting with the offending key where there is one.
    pub message: String,
}

impl fmt::Display for InventoryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            write!(f, "{}: {}", self.path.display(), self.message)
        } else {
            write!(
                f,
                "{}:{}:{}: {}",
                self.path.display(),
                self.line,
                self.column,
                self.message
            )
        }
    }
}

/// Reads and validates the inventory at `path`.
///
/// `known_checks` lists the valid check IDs for `checks.skip`. `~` in paths
/// expands to `$HOME`; relative paths are resolved against the directory of
/// `path`.
pub fn load(path: &Path, known_checks: &[&str]) -> Result<Inventory, InventoryError> {
    load_with_home(path, known_checks, home_dir().as_deref())
}

/// [`load`], then [`Inventory::limit`] with `limit` when there is one: the
/// inventory doctor, fix and validate work on. The error as displayed.
pub fn load_limited(path: &Path, known_checks: &[&str], limit: Option<&str>) -> Result<Inventory, String> {
    let mut inventory = load(path, known_checks).map_err(|e| e.to_string())?;
    if let Some(pattern) = limit {
        inventory.limit(pattern)?;
    }
    Ok(inventory)
}

/// Validates inventory `text` as if it had been read from `path` (used for
/// messages and to resolve relative paths).
pub fn parse_str(
    text: &str,
    path: &Path,
    known_checks: &[&str],
) -> Result<Inventory, InventoryError> {
    parse_with_home(text, path, known_checks, home_dir().as_deref())
}

fn home_dir() -> Option<PathBuf> {
    std::env::var_os("HOME")
        .filter(|home| !home.is_empty())
        .map(PathBuf::from)
}

fn load_with_home(
    path: &Path,
    known_checks: &[&str],
    home: Option<&Path>,
) -> Result<Inventory, InventoryError> {
    let text = std::fs::read_to_string(path).map_err(|err| {
        let reason = err.to_string();
        let mut chars = reason.chars();
        let reason = match chars.next() {
            Some(first) => first.to_lowercase().chain(chars).collect(),
            None => reason,
        };
        InventoryError {
            path: path.to_path_buf(),
            line: 0,
            column: 0,
            message: format!("cannot read inventory: {reason}"),
        }
    })?;
    parse_with_home(&text, path, known_checks, home)
}

fn parse_with_home(
    text: &str,
    path: &Path,
    known_checks: &[&str],
    home: Option<&Path>,
) -> Result<Inventory, InventoryError> {
    let format = ansible::detect(path, text);
    let parser = Parser {
        path,
        text,
        lines: Lines::new(text),
        base_dir: path.parent().unwrap_or(Path::new("")),
        home,
        known_checks,
        format,
    };
    parser.parse()
}

/// Keys allowed in `[defaults]`.
const DEFAULTS_KEYS: &[&str] = &[
    "user",
    "port",
    "identity_file",
    "known_hosts",
    "connect_timeout",
    "command_timeout",
    "accept_new_host_keys",
    "proxy_jump",
];
/// Keys allowed in `[defaults]` only.
const DEFAULTS_ONLY_KEYS: &[&str] = &["ssh_config"];
/// Keys allowed in a `[[hosts]]` entry besides [`DEFAULTS_KEYS`].
const HOST_KEYS: &[&str] = &["name", "address", "nova_release", "groups", "transport"];
/// Keys allowed in `[inventory]`.
const INVENTORY_KEYS: &[&str] = &["ansible"];
/// Keys allowed in `[checks]`.
const CHECKS_KEYS: &[&str] = &["skip"];
/// Keys allowed in `[policy]`.
const POLICY_KEYS: &[&str] = &["auth_tcp", "transport", "libvirt_port", "allowed_sources", "keep_tcp"];
const NOVA_KEYS: &[&str] = &["cloud", "clouds_yaml", "image"];
const TLS_KEYS: &[&str] = &["ca_dir", "ca_cert", "ca_key"];

/// Connection settings that `[defaults]` and `[[hosts]]` share; `None` when
/// the key is absent.
#[derive(Debug, Default)]
struct Connection {
    user: Option<String>,
    port: Option<u16>,
    identity_file: Option<PathBuf>,
    known_hosts: Option<PathBuf>,
    connect_timeout: Option<Duration>,
    command_timeout: Option<Duration>,
    accept_new_host_keys: Option<bool>,
    /// `proxy_jump`: the hops (empty for `"none"`).
    proxy_jump: Option<Vec<HopSpec>>,
}

impl Connection {
    /// `self` where set, else `defaults`.
    fn or(self, defaults: &Connection) -> Connection {
        Connection {
            user: self.user.or_else(|| defaults.user.clone()),
            port: self.port.or(defaults.port),
            identity_file: self
                .identity_file
                .or_else(|| defaults.identity_file.clone()),
            known_hosts: self.known_hosts.or_else(|| defaults.known_hosts.clone()),
            connect_timeout: self.connect_timeout.or(defaults.connect_timeout),
            command_timeout: self.command_timeout.or(defaults.command_timeout),
            accept_new_host_keys: self.accept_new_host_keys.or(defaults.accept_new_host_keys),
            proxy_jump: self.proxy_jump.or_else(|| defaults.proxy_jump.clone()),
        }
    }
}

/// A `[[hosts]]` entry before defaults are applied.
#[derive(Debug)]
struct RawHost {
    name: String,
    address: Option<String>,
    nova_release: Option<NovaRelease>,
    transport: Option<Transport>,
    connection: Connection,
    /// Span of the `[[hosts]]` header (or inline table).
    span: Option<Range<usize>>,
    groups: Vec<String>,
    /// For a host of an Ansible inventory only: that file, line and column
    /// (`span` is then None).
    origin: Option<(PathBuf, usize, usize)>,
}

/// `PREFIX.KEY` (`hosts[0].port`) for messages, formatted only when there is
/// a message: loading a large inventory formats nothing per key.
#[derive(Clone, Copy)]
struct Dotted<'a>(&'a str, &'a str);

impl fmt::Display for Dotted<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.0, self.1)
    }
}

/// `in PREFIX` (`in hosts[0]`), for [`Parser::check_keys`].
struct In<'a>(&'a str);

impl fmt::Display for In<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "in {}", self.0)
    }
}

/// One parse of one inventory text.
struct Parser<'a> {
    path: &'a Path,
    text: &'a str,
    /// Line starts of `text`, for positions.
    lines: Lines<'a>,
    base_dir: &'a Path,
    home: Option<&'a Path>,
    known_checks: &'a [&'a str],
    /// What `text` is; for an Ansible inventory, the TOML parts are all defaults.
    format: Format,
}

impl Parser<'_> {
    fn parse(&self) -> Result<Inventory, InventoryError> {
        if self.format != Format::Toml {
            let (hosts, groups) = self.ansible_hosts(self.path, self.text, self.format)?;
            return self.finish(None, Connection::default(), hosts, Vec::new(), Policy::default(), NovaConf::default(), groups);
        }
        let doc = Document::parse(self.text).map_err(|err| {
            let mut message = format!("toml syntax error: {}", err.message().trim());
            if self.path.extension().is_none_or(|e| e != "toml") {
                message.push_str(" (read as a TOML inventory: the file has no .toml, .ini or .yml extension and does not look like an Ansible INI or YAML inventory)");
            }
            // toml_edit does not name the repeated key; its span does.
            if err.message() == "duplicate key"
                && let Some(key) = err.span().and_then(|span| self.text.get(span))
            {
                message.push_str(&format!(" {:?}", key.trim()));
            }
            self.error(err.span(), message)
        })?;

        let mut defaults = Connection::default();
        // `[defaults] ssh_config`: Some(None) when disabled with "", with the value's span.
        let mut ssh_config_key: Option<(Option<PathBuf>, Option<Range<usize>>)> = None;
        let mut raw_hosts = Vec::new();
        let mut skip = Vec::new();
        let mut policy = Policy::default();
        let mut nova = NovaConf::default();
        let mut tls: Option<TlsConf> = None;
        // `[inventory] ansible`: that file's hosts and groups.
        let mut ansible: Option<(Vec<RawHost>, Vec<String>)> = None;
        // Sections are handled in file order so the first error reported is
        // the first one in the file.
        for (key, item) in doc.iter() {
            match key {
                "defaults" => {
                    let table = self.table(item, "defaults")?;
                    self.check_keys(table, DEFAULTS_KEYS, DEFAULTS_ONLY_KEYS, "in [defaults]")?;
                    defaults = self.connection(table, "defaults")?;
                    if let Some(item) = table.get("ssh_config") {
                        let name = "defaults.ssh_config";
                        let path = if self.string(item, name)?.is_empty() {
                            None
                        } else {
                            Some(self.path_value(item, name)?)
                        };
                        ssh_config_key = Some((path, item.span()));
                    }
                }
                "hosts" => raw_hosts = self.hosts(item)?,
                "checks" => skip = self.checks(item)?,
                "policy" => policy = self.policy(item)?,
                "nova" => nova = self.nova(item)?,
                "tls" => tls = Some(self.tls(item)?),
                "inventory" => ansible = self.inventory_table(item)?,
                _ => {
                    let key_span = doc.get_key_value(key).and_then(|(k, _)| k.span());
                    return Err(self.error(key_span, format!("unknown key {key:?} at top level")));
                }
            }
        }

        let mut groups: Vec<String> = raw_hosts.iter().flat_map(|h| h.groups.iter().cloned()).collect();
        if let Some((ansible_hosts, ansible_groups)) = ansible {
            groups.extend(ansible_groups);
            raw_hosts = merge_hosts(ansible_hosts, raw_hosts);
        }
        let mut inv = self.finish(ssh_config_key, defaults, raw_hosts, skip, policy, nova, groups)?;
        if let Some(tls) = tls {
            inv.tls = tls;
        }
        Ok(inv)
    }

    /// Parses `[tls]`: `ca_dir`, or `ca_cert` and `ca_key` together (paths: `~` expanded,
    /// relative to the inventory's directory). An operator's CA files must exist.
    fn tls(&self, item: &Item) -> Result<TlsConf, InventoryError> {
        let table = self.table(item, "tls")?;
        self.check_keys(table, TLS_KEYS, &[], "in [tls]")?;
        let dir = table.get("ca_dir");
        let (cert, key) = (table.get("ca_cert"), table.get("ca_key"));
        if let Some(d) = dir {
            if let Some(other) = cert.or(key) {
                return Err(self.error(other.span(), "tls: ca_dir, or ca_cert and ca_key, not both"));
            }
            let dir = self.path_value(d, "tls.ca_dir")?;
            return Ok(TlsConf { ca_cert: Some(dir.join(crate::ca::CA_CERT)), ca_key: Some(dir.join(crate::ca::CA_KEY)) });
        }
        match (cert, key) {
            (Some(c), Some(k)) => {
                let mut paths = Vec::new();
                for (item, name) in [(c, "tls.ca_cert"), (k, "tls.ca_key")] {
                    let p = self.path_value(item, name)?;
                    if !p.is_file() {
                        return Err(self.error(item.span(), format!("{name}: {} is not a file", p.display())));
                    }
                    paths.push(p);
                }
                Ok(TlsConf { ca_key: paths.pop(), ca_cert: paths.pop() })
            }
            (Some(one), None) | (None, Some(one)) => Err(self.error(one.span(), "tls: ca_cert and ca_key go together (an operator's CA: its certificate and its key)")),
            (None, None) => Err(self.error(item.span(), "tls: expected ca_dir, or ca_cert and ca_key")),
        }
    }

    /// Applies defaults and ssh_config to every host: the inventory.
    #[allow(clippy::too_many_arguments)]
    fn finish(
        &self,
        ssh_config_key: Option<(Option<PathBuf>, Option<Range<usize>>)>,
        defaults: Connection,
        raw_hosts: Vec<RawHost>,
        skip: Vec<String>,
        policy: Policy,
        nova: NovaConf,
        mut groups: Vec<String>,
    ) -> Result<Inventory, InventoryError> {
        let ssh = self.ssh_config(ssh_config_key)?;
        // Expanded once, not per host.
        let default_known_hosts = expand_path(DEFAULT_KNOWN_HOSTS, self.base_dir, self.home);
        let hosts = raw_hosts
            .into_iter()
            .map(|raw| self.apply_defaults(raw, &defaults, &default_known_hosts, &ssh))
            .collect::<Result<_, _>>()?;
        groups.extend(["all".to_string(), "ungrouped".to_string()]);
        groups.sort();
        groups.dedup();
        Ok(Inventory {
            path: self.path.to_path_buf(),
            hosts,
            skip,
            policy,
            nova,
            // No [tls]: the directory `migready ca init` writes by default.
            tls: match expand_path(DEFAULT_CA_DIR, self.base_dir, self.home) {
                Ok(dir) => TlsConf { ca_cert: Some(dir.join(crate::ca::CA_CERT)), ca_key: Some(dir.join(crate::ca::CA_KEY)) },
                Err(_) => TlsConf::default(),
            },
            groups,
            format: self.format,
        })
    }

    /// `[inventory]`: `ansible = "PATH"` (relative to this file) names an Ansible
    /// inventory whose hosts join this one's.
    #[allow(clippy::type_complexity)]
    fn inventory_table(&self, item: &Item) -> Result<Option<(Vec<RawHost>, Vec<String>)>, InventoryError> {
        let table = self.table(item, "inventory")?;
        self.check_keys(table, INVENTORY_KEYS, &[], "in [inventory]")?;
        let Some(item) = table.get("ansible") else {
            return Ok(None);
        };
        let path = self.path_value(item, "inventory.ansible")?;
        let text = std::fs::read_to_string(&path).map_err(|e| {
            self.error(item.span(), format!("inventory.ansible: cannot read {}: {}", path.display(), lowercase_first(&e.to_string())))
        })?;
        let format = match ansible::detect(&path, &text) {
            Format::Toml => {
                return Err(self.error(
                    item.span(),
                    format!(
                        "inventory.ansible: {} reads as a TOML inventory, not an Ansible INI or YAML one",
                        path.display()
                    ),
                ));
            }
            format => format,
        };
        self.ansible_hosts(&path, &text, format).map(Some)
    }

    /// The hosts of the Ansible inventory `text` (read from `path`), each value
    /// checked as the TOML's are; and its group names.
    fn ansible_hosts(&self, path: &Path, text: &str, format: Format) -> Result<(Vec<RawHost>, Vec<String>), InventoryError> {
        let at = |line: usize, column: usize, message: String| InventoryError {
            path: path.to_path_buf(),
            line,
            column,
            message: format!("{}: {message}", format.name()),
        };
        let resolved = ansible::read(text, format).map_err(|e| at(e.line, e.column, e.message))?;
        let base_dir = path.parent().unwrap_or(Path::new(""));
        let mut seen: HashMap<String, usize> = HashMap::new();
        let mut hosts = Vec::with_capacity(resolved.hosts.len());
        for host in resolved.hosts {
            let name = &host.name;
            check_host_name(name).map_err(|r| at(host.line, host.column, format!("host name {name:?}: {r}")))?;
            if let Some(first) = seen.insert(name.to_ascii_lowercase(), host.line) {
                return Err(at(host.line, host.column, format!("duplicate host name {name:?} (first at line {first}; names are compared without case)")));
            }
            // An error in a value: at the value, which may be a group's.
            let bad = |key: &str, val: &ansible::Val, reason: String| {
                let whose = match &val.group {
                    Some(group) => format!(" (group {group:?}, for host {name:?} at line {})", host.line),
                    None => String::new(),
                };
                if val.text.is_empty() {
                    at(val.line, val.column, format!("{key}: {reason}{whose}"))
                } else {
                    at(val.line, val.column, format!("{key}: {:?}: {reason}{whose}", val.text))
                }
            };
            let address = match ansible::setting(&host, ansible::ADDRESS_VARS) {
                Some((key, val)) => Some(check_address(&val.text).map_err(|r| bad(key, val, r))?),
                None => None,
            };
            let mut connection = Connection::default();
            if let Some((key, val)) = ansible::setting(&host, ansible::USER_VARS) {
                check_user(&val.text).map_err(|r| bad(key, val, r))?;
                connection.user = Some(val.text.clone());
            }
            if let Some((key, val)) = ansible::setting(&host, ansible::PORT_VARS) {
                let port = Some(val.text.as_str())
                    .filter(|t| !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()))
                    .and_then(|t| t.parse::<u16>().ok())
                    .filter(|p| *p != 0)
                    .ok_or_else(|| bad(key, val, "expected an integer in 1..=65535".to_string()))?;
                connection.port = Some(port);
            }
            if let Some((key, val)) = ansible::setting(&host, ansible::KEY_VARS) {
                connection.identity_file = Some(expand_path(&val.text, base_dir, self.home).map_err(|r| bad(key, val, r))?);
            }
            hosts.push(RawHost {
                name: host.name.clone(),
                address,
                nova_release: None,
                transport: None,
                connection,
                span: None,
                groups: host.groups.into_iter().filter(|g| g != "ungrouped").collect(),
                origin: Some((path.to_path_buf(), host.line, host.column)),
            });
        }
        Ok((hosts, resolved.groups))
    }

    /// Parses `[nova]`. A cloud name is a clouds.yaml key: letters, digits, `.`, `_`, `-`.
    fn nova(&self, item: &Item) -> Result<NovaConf, InventoryError> {
        let table = self.table(item, "nova")?;
        self.check_keys(table, NOVA_KEYS, &[], "in [nova]")?;
        let mut nova = NovaConf::default();
        if let Some(item) = table.get("cloud") {
            let v = self.string(item, "nova.cloud")?;
            if v.is_empty() || !v.chars().all(|c| c.is_ascii_alphanumeric() || "._-".contains(c)) {
                return Err(self.error(item.span(), format!("nova.cloud: {v:?} is not a cloud name (letters, digits, '.', '_', '-')")));
            }
            nova.cloud = Some(v.to_string());
        }
        if let Some(item) = table.get("image") {
            nova.image = Some(self.string(item, "nova.image")?.to_string());
        }
        if let Some(item) = table.get("clouds_yaml") {
            nova.clouds_yaml = Some(self.path_value(item, "nova.clouds_yaml")?);
        }
        Ok(nova)
    }

    /// Parses `hosts`: an array of tables (`[[hosts]]`, or an array of inline
    /// tables), with unique names.
    fn hosts(&self, item: &Item) -> Result<Vec<RawHost>, InventoryError> {
        // (table, span of the table) for each entry.
        let entries: Vec<(&dyn TableLike, Option<Range<usize>>)> = match item {
            Item::ArrayOfTables(array) => array
                .iter()
                .map(|table| (table as &dyn TableLike, table.span()))
                .collect(),
            Item::Value(Value::Array(array)) => {
                let mut entries = Vec::new();
                for (index, value) in array.iter().enumerate() {
                    match value.as_inline_table() {
                        Some(table) => entries.push((table as &dyn TableLike, table.span())),
                        None => {
                            return Err(self.error(
                                value.span(),
                                format!(
                                    "hosts[{index}]: expected a table, found {}",
                                    describe(&Item::Value(value.clone()))
                                ),
                            ));
                        }
                    }
                }
                entries
            }
            other => {
                return Err(self.error(
                    other.span(),
                    format!(
                        "hosts: expected an array of tables ([[hosts]]), found {}",
                        describe(other)
                    ),
                ));
            }
        };

        // Lowercased name -> line of its value, to report duplicates.
        let mut seen: HashMap<String, usize> = HashMap::new();
        let mut hosts = Vec::with_capacity(entries.len());
        for (index, (table, span)) in entries.into_iter().enumerate() {
            let prefix = format!("hosts[{index}]");
            self.check_keys(table, DEFAULTS_KEYS, HOST_KEYS, In(&prefix))?;

            let Some(name_item) = table.get("name") else {
                return Err(self.error(span, format!("{prefix}: missing required key \"name\"")));
            };
            let name = self.host_name(name_item, Dotted(&prefix, "name"))?;
            let (name_line, _) = self.position(name_item.span());
            if let Some(first_line) = seen.insert(name.to_ascii_lowercase(), name_line) {
                return Err(self.error(
                    name_item.span(),
                    format!("duplicate host name {name:?} (first defined at line {first_line})"),
                ));
            }

            let address = match table.get("address") {
                Some(item) => Some(self.address(item, Dotted(&prefix, "address"))?),
                None => None,
            };
            let nova_release = match table.get("nova_release") {
                Some(item) => Some(self.nova_release(item, Dotted(&prefix, "nova_release"))?),
                None => None,
            };
            let groups = match table.get("groups") {
                Some(item) => self.groups(item, Dotted(&prefix, "groups"))?,
                None => Vec::new(),
            };
            let transport = match table.get("transport") {
                Some(item) => Some(self.transport(item, Dotted(&prefix, "transport"))?),
                None => None,
            };
            let connection = self.connection(table, &prefix)?;
            hosts.push(RawHost {
                name,
                address,
                nova_release,
                transport,
                connection,
                span,
                groups,
                origin: None,
            });
        }
        Ok(hosts)
    }

    /// Reads the OpenSSH client configuration: the file `[defaults] ssh_config`
    /// names (an error if it does not exist), none for `ssh_config = ""`, else
    /// `~/.ssh/config` when it exists.
    fn ssh_config(
        &self,
        key: Option<(Option<PathBuf>, Option<Range<usize>>)>,
    ) -> Result<SshConfig, InventoryError> {
        let (path, explicit) = match key {
            Some((None, _)) => return Ok(SshConfig::default()),
            Some((Some(path), span)) => (path, Some(span)),
            None => match expand_path(DEFAULT_SSH_CONFIG, self.base_dir, self.home) {
                Ok(path) => (path, None),
                // No $HOME: no default file either.
                Err(_) => return Ok(SshConfig::default()),
            },
        };
        SshConfig::load(&path, self.home, explicit.is_none()).map_err(|e| match explicit {
            Some(span) if e.line == 0 => self.error(
                span,
                format!(
                    "defaults.ssh_config: {}: {}",
                    path.display(),
                    e.message.trim_start_matches("cannot read ssh_config: ")
                ),
            ),
            _ => config_error(e, None),
        })
    }

    /// Applies `[defaults]`, then ssh_config, then migready's defaults, key by
    /// key: what the inventory says wins, then the first value ssh_config
    /// gives for the host.
    fn apply_defaults(
        &self,
        raw: RawHost,
        defaults: &Connection,
        default_known_hosts: &Result<PathBuf, String>,
        ssh: &SshConfig,
    ) -> Result<HostSpec, InventoryError> {
        let connection = raw.connection.or(defaults);
        let (line, origin_path) = match &raw.origin {
            Some((path, line, _)) => (*line, path.as_path()),
            None => (self.position(raw.span.clone()).0, self.path),
        };
        let whose = format!("host {:?} at {}:{line}", raw.name, origin_path.display());
        // An error about the host as a whole: at its `[[hosts]]` entry or Ansible line.
        let host_error = |message: String| match &raw.origin {
            Some((path, line, column)) => InventoryError { path: path.clone(), line: *line, column: *column, message },
            None => self.error(raw.span.clone(), message),
        };
        let cfg = |e: ConfigError| config_error(e, Some(&whose));

        let mut names = vec![raw.name.as_str()];
        if let Some(address) = raw.address.as_deref().filter(|a| *a != raw.name) {
            names.push(address);
        }
        let found = ssh.lookup(&names);
        let address = match (&raw.address, found.host_name) {
            (Some(address), _) => address.clone(),
            (None, Some(opt)) => ssh_config::host_name(ssh, opt, &raw.name).map_err(cfg)?,
            (None, None) => raw.name.clone(),
        };
        let user = match (&connection.user, found.user) {
            (Some(user), _) => user.clone(),
            (None, Some(opt)) => ssh_config::user(ssh, opt).map_err(cfg)?,
            (None, None) => DEFAULT_USER.to_string(),
        };
        let port = match (connection.port, found.port) {
            (Some(port), _) => port,
            (None, Some(opt)) => ssh_config::port(ssh, opt).map_err(cfg)?,
            (None, None) => DEFAULT_PORT,
        };
        let connect_timeout = match (connection.connect_timeout, found.connect_timeout) {
            (Some(timeout), _) => timeout,
            (None, Some(opt)) => {
                ssh_config::connect_timeout(ssh, opt, MAX_TIMEOUT_SECS).map_err(cfg)?
            }
            (None, None) => DEFAULT_CONNECT_TIMEOUT,
        };
        let tokens = Tokens {
            host: &address,
            original: &raw.name,
            remote_user: &user,
            port,
        };
        let default_known = || match default_known_hosts {
            Ok(path) => Ok(path.clone()),
            Err(reason) => Err(host_error(format!("known_hosts: default {DEFAULT_KNOWN_HOSTS:?}: {reason}"))),
        };
        let known_hosts = match (&connection.known_hosts, found.known_hosts) {
            (Some(path), _) => path.clone(),
            (None, Some(opt)) => known_hosts_file(ssh, opt, &tokens).map_err(cfg)?,
            (None, None) => default_known()?,
        };
        let accept_new_host_keys = match (connection.accept_new_host_keys, found.strict) {
            (Some(accept), _) => accept,
            (None, Some(opt)) => ssh_config::accept_new(ssh, opt).map_err(cfg)?,
            (None, None) => false,
        };
        let identity_files = match &connection.identity_file {
            Some(_) => Vec::new(),
            None => identity_files(ssh, &found.identity_files, &tokens).map_err(cfg)?,
        };

        // The jump hosts: the inventory's, else ssh_config's; then what
        // ssh_config says of the first hop's own jump hosts, as ssh does.
        let mut chain: Vec<HopSpec> = match (&connection.proxy_jump, found.proxy) {
            (Some(hops), _) => hops.clone(),
            (None, Some(opt)) => ssh_config::jumps(ssh, opt).map_err(cfg)?,
            (None, None) => Vec::new(),
        };
        let mut seen: Vec<String> = names.iter().map(|n| n.to_ascii_lowercase()).collect();
        seen.extend(chain.iter().map(|h| h.host.to_ascii_lowercase()));
        while let Some(first) = chain.first() {
            let Some(opt) = ssh.lookup(&[&first.host]).proxy else {
                break;
            };
            let before = ssh_config::jumps(ssh, opt).map_err(cfg)?;
            if before.is_empty() {
                break;
            }
            if let Some(hop) = before
                .iter()
                .find(|h| seen.contains(&h.host.to_ascii_lowercase()))
            {
                return Err(cfg(ssh.error(
                    opt.at,
                    None,
                    format!(
                        "{}: ProxyJump loop: {} is reached through {} again; exclude the jump host from the Host \
                         patterns (e.g. \"Host * !{}\")",
                        opt.keyword, first.host, hop.host, hop.host
                    ),
                )));
            }
            seen.extend(before.iter().map(|h| h.host.to_ascii_lowercase()));
            chain.splice(0..0, before);
            if chain.len() > MAX_JUMPS {
                break;
            }
        }
        if chain.len() > MAX_JUMPS {
            return Err(host_error(format!("{}: more than {MAX_JUMPS} jump hosts on the way", raw.name)));
        }
        let jumps = chain
            .iter()
            .map(|hop| self.jump(hop, &connection, &user, ssh, &default_known, &cfg))
            .collect::<Result<Vec<_>, _>>()?;

        Ok(HostSpec {
            address,
            name: raw.name,
            port,
            user,
            identity_file: connection.identity_file,
            known_hosts,
            accept_new_host_keys,
            connect_timeout,
            command_timeout: connection
                .command_timeout
                .unwrap_or(DEFAULT_COMMAND_TIMEOUT),
            nova_release: raw.nova_release,
            transport: raw.transport,
            line,
            groups: {
                let mut groups = raw.groups;
                groups.sort();
                groups.dedup();
                groups
            },
            ssh: SshOptions {
                identity_files,
                jumps,
            },
        })
    }

    /// One jump host: user and port as written, else ssh_config's for that
    /// name, else the host's user and port 22; keys, known_hosts and host key
    /// checking from the inventory, else ssh_config's for that name, else
    /// migready's defaults.
    fn jump(
        &self,
        hop: &HopSpec,
        connection: &Connection,
        host_user: &str,
        ssh: &SshConfig,
        default_known: &dyn Fn() -> Result<PathBuf, InventoryError>,
        cfg: &dyn Fn(ConfigError) -> InventoryError,
    ) -> Result<Jump, InventoryError> {
        let found = ssh.lookup(&[&hop.host]);
        let address = match found.host_name {
            Some(opt) => ssh_config::host_name(ssh, opt, &hop.host).map_err(cfg)?,
            None => hop.host.clone(),
        };
        let user = match (&hop.user, found.user) {
            (Some(user), _) => user.clone(),
            (None, Some(opt)) => ssh_config::user(ssh, opt).map_err(cfg)?,
            (None, None) => host_user.to_string(),
        };
        let port = match (hop.port, found.port) {
            (Some(port), _) => port,
            (None, Some(opt)) => ssh_config::port(ssh, opt).map_err(cfg)?,
            (None, None) => DEFAULT_PORT,
        };
        let tokens = Tokens {
            host: &address,
            original: &hop.host,
            remote_user: &user,
            port,
        };
        let identity_files = match &connection.identity_file {
            Some(path) => vec![path.clone()],
            None => identity_files(ssh, &found.identity_files, &tokens).map_err(cfg)?,
        };
        let known_hosts = match (&connection.known_hosts, found.known_hosts) {
            (Some(path), _) => path.clone(),
            (None, Some(opt)) => known_hosts_file(ssh, opt, &tokens).map_err(cfg)?,
            (None, None) => default_known()?,
        };
        let accept_new_host_keys = match (connection.accept_new_host_keys, found.strict) {
            (Some(accept), _) => accept,
            (None, Some(opt)) => ssh_config::accept_new(ssh, opt).map_err(cfg)?,
            (None, None) => false,
        };
        Ok(Jump {
            name: hop.to_string(),
            address,
            port,
            user,
            identity_files,
            known_hosts,
            accept_new_host_keys,
        })
    }

    /// Reads the connection keys of `[defaults]` or one host; `prefix` names
    /// the table in messages (`defaults`, `hosts[0]`).
    fn connection(
        &self,
        table: &dyn TableLike,
        prefix: &str,
    ) -> Result<Connection, InventoryError> {
        let mut connection = Connection::default();
        for (key, item) in table.iter() {
            let name = Dotted(prefix, key);
            match key {
                "user" => connection.user = Some(self.user(item, name)?),
                "port" => connection.port = Some(self.port(item, name)?),
                "identity_file" => connection.identity_file = Some(self.path_value(item, name)?),
                "known_hosts" => connection.known_hosts = Some(self.path_value(item, name)?),
                "connect_timeout" => connection.connect_timeout = Some(self.timeout(item, name)?),
                "command_timeout" => connection.command_timeout = Some(self.timeout(item, name)?),
                "accept_new_host_keys" => {
                    connection.accept_new_host_keys = Some(self.boolean(item, name)?)
                }
                "proxy_jump" => {
                    let value = self.string(item, name)?;
                    let hops = ssh_config::parse_jumps(value)
                        .map_err(|reason| self.error(item.span(), format!("{name}: {reason}")))?;
                    if hops.len() > MAX_JUMPS {
                        return Err(self.error(
                            item.span(),
                            format!("{name}: more than {MAX_JUMPS} jump hosts"),
                        ));
                    }
                    connection.proxy_jump = Some(hops);
                }
                // Host-only keys, read by the caller; unknown keys were
                // rejected by `check_keys`.
                _ => {}
            }
        }
        Ok(connection)
    }

    /// A host's `groups`: an array of group names (see [`ansible::check_group_name`]).
    fn groups(&self, item: &Item, name: impl fmt::Display + Copy) -> Result<Vec<String>, InventoryError> {
        let array = item.as_array().ok_or_else(|| {
            self.error(item.span(), format!("{name}: expected an array of group names, found {}", describe(item)))
        })?;
        let mut groups = Vec::new();
        for value in array.iter() {
            let Some(group) = value.as_str() else {
                return Err(self.error(
                    value.span(),
                    format!("{name}: expected a string, found {}", describe(&Item::Value(value.clone()))),
                ));
            };
            ansible::check_group_name(group).map_err(|r| self.error(value.span(), format!("{name}: {r}")))?;
            if matches!(group, "all" | "ungrouped") {
                return Err(self.error(value.span(), format!("{name}: {group:?} is implicit (every host is in \"all\"; hosts without groups are \"ungrouped\")")));
            }
            groups.push(group.to_string());
        }
        Ok(groups)
    }

    /// Parses `[checks]`: returns `skip`, validated against the known IDs.
    fn checks(&self, item: &Item) -> Result<Vec<String>, InventoryError> {
        let table = self.table(item, "checks")?;
        self.check_keys(table, CHECKS_KEYS, &[], "in [checks]")?;
        let Some(item) = table.get("skip") else {
            return Ok(Vec::new());
        };
        let array = item.as_array().ok_or_else(|| {
            self.error(
                item.span(),
                format!(
                    "checks.skip: expected an array of strings, found {}",
                    describe(item)
                ),
            )
        })?;
        let mut skip: Vec<String> = Vec::new();
        for (index, value) in array.iter().enumerate() {
            let name = format!("checks.skip[{index}]");
            let id = value.as_str().ok_or_else(|| {
                self.error(
                    value.span(),
                    format!(
                        "{name}: expected a string, found {}",
                        describe(&Item::Value(value.clone()))
                    ),
                )
            })?;
            if !self.known_checks.contains(&id) {
                let mut message = format!("{name}: unknown check id {id:?}");
                if !self.known_checks.is_empty() {
                    message.push_str(&format!(" (known: {})", self.known_checks.join(", ")));
                }
                return Err(self.error(value.span(), message));
            }
            if !skip.iter().any(|s| s == id) {
                skip.push(id.to_string());
            }
        }
        Ok(skip)
    }

    /// Parses `[policy]`.
    fn policy(&self, item: &Item) -> Result<Policy, InventoryError> {
        let table = self.table(item, "policy")?;
        self.check_keys(table, POLICY_KEYS, &[], "in [policy]")?;
        let mut policy = Policy::default();
        if let Some(item) = table.get("auth_tcp") {
            let value = self.string(item, "policy.auth_tcp")?;
            policy.auth_tcp = match value {
                "none" => AuthTcp::None,
                "sasl" => AuthTcp::Sasl,
                _ => {
                    return Err(self.error(
                        item.span(),
                        format!("policy.auth_tcp: expected \"none\" or \"sasl\", found {value:?}"),
                    ));
                }
            };
        }
        if let Some(item) = table.get("transport") {
            policy.transport = self.transport(item, "policy.transport")?;
        }
        if let Some(item) = table.get("libvirt_port") {
            policy.libvirt_port = self.port(item, "policy.libvirt_port")?;
        }
        if let Some(item) = table.get("keep_tcp") {
            policy.keep_tcp = self.boolean(item, "policy.keep_tcp")?;
        }
        if let Some(item) = table.get("allowed_sources") {
            let array = item.as_array().ok_or_else(|| {
                self.error(
                    item.span(),
                    format!(
                        "policy.allowed_sources: expected an array of strings, found {}",
                        describe(item)
                    ),
                )
            })?;
            for (index, value) in array.iter().enumerate() {
                let name = format!("policy.allowed_sources[{index}]");
                let Some(source) = value.as_str() else {
                    return Err(self.error(
                        value.span(),
                        format!(
                            "{name}: expected a string, found {}",
                            describe(&Item::Value(value.clone()))
                        ),
                    ));
                };
                if !is_valid_source(source) {
                    let mut message =
                        format!("{name}: expected an IPv4/IPv6 address or CIDR, found {source:?}");
                    if source.contains('%') {
                        message.push_str(" (IPv6 zone ids are not supported)");
                    }
                    return Err(self.error(value.span(), message));
                }
                policy.allowed_sources.push(source.to_string());
            }
        }
        Ok(policy)
    }

    /// Rejects any key of `table` not in `allowed` or `also_allowed`.
    /// `location` ends the message: `in [defaults]`, `in hosts[0]`.
    fn check_keys(
        &self,
        table: &dyn TableLike,
        allowed: &[&str],
        also_allowed: &[&str],
        location: impl fmt::Display,
    ) -> Result<(), InventoryError> {
        for (key, _) in table.iter() {
            if !allowed.contains(&key) && !also_allowed.contains(&key) {
                let span = table.get_key_value(key).and_then(|(k, _)| k.span());
                return Err(self.error(span, format!("unknown key {key:?} {location}")));
            }
        }
        Ok(())
    }

    /// A top-level section that must be a table (`[name]` or inline).
    fn table<'i>(&self, item: &'i Item, name: &str) -> Result<&'i dyn TableLike, InventoryError> {
        match item {
            Item::Table(table) => Ok(table as &Table as &dyn TableLike),
            Item::Value(Value::InlineTable(table)) => Ok(table),
            other => Err(self.error(
                other.span(),
                format!(
                    "{name}: expected a table ([{name}]), found {}",
                    describe(other)
                ),
            )),
        }
    }

    fn string<'i>(
        &self,
        item: &'i Item,
        name: impl fmt::Display + Copy,
    ) -> Result<&'i str, InventoryError> {
        item.as_str().ok_or_else(|| {
            self.error(
                item.span(),
                format!("{name}: expected a string, found {}", describe(item)),
            )
        })
    }

    /// A host name (RFC 1123; see [`check_host_name`]).
    fn host_name(
        &self,
        item: &Item,
        name: impl fmt::Display + Copy,
    ) -> Result<String, InventoryError> {
        let value = self.string(item, name)?;
        check_host_name(value).map_err(|reason| self.value_error(item, name, value, reason))?;
        Ok(value.to_string())
    }

    /// Where SSH connects (see [`check_address`]), brackets removed.
    fn address(
        &self,
        item: &Item,
        name: impl fmt::Display + Copy,
    ) -> Result<String, InventoryError> {
        let value = self.string(item, name)?;
        check_address(value).map_err(|reason| self.value_error(item, name, value, reason))
    }

    /// An SSH user name (see [`check_user`]).
    fn user(&self, item: &Item, name: impl fmt::Display + Copy) -> Result<String, InventoryError> {
        let value = self.string(item, name)?;
        check_user(value).map_err(|reason| self.value_error(item, name, value, reason))?;
        Ok(value.to_string())
    }

    /// `NAME: must not be empty`, or `NAME: "VALUE": REASON`, at the value.
    fn value_error(
        &self,
        item: &Item,
        name: impl fmt::Display + Copy,
        value: &str,
        reason: String,
    ) -> InventoryError {
        if value.is_empty() {
            self.error(item.span(), format!("{name}: {reason}"))
        } else {
            self.error(item.span(), format!("{name}: {value:?}: {reason}"))
        }
    }

    fn port(&self, item: &Item, name: impl fmt::Display + Copy) -> Result<u16, InventoryError> {
        item.as_integer()
            .and_then(|port| u16::try_from(port).ok())
            .filter(|port| *port != 0)
            .ok_or_else(|| {
                self.error(
                    item.span(),
                    format!(
                        "{name}: expected an integer in 1..=65535, found {}",
                        describe(item)
                    ),
                )
            })
    }

    fn timeout(
        &self,
        item: &Item,
        name: impl fmt::Display + Copy,
    ) -> Result<Duration, InventoryError> {
        item.as_integer()
            .filter(|secs| (1..=MAX_TIMEOUT_SECS).contains(secs))
            .map(|secs| Duration::from_secs(secs as u64))
            .ok_or_else(|| {
                self.error(
                    item.span(),
                    format!(
                        "{name}: expected a number of seconds in 1..={MAX_TIMEOUT_SECS}, found {}",
                        describe(item)
                    ),
                )
            })
    }

    fn boolean(&self, item: &Item, name: impl fmt::Display + Copy) -> Result<bool, InventoryError> {
        item.as_bool().ok_or_else(|| {
            self.error(
                item.span(),
                format!("{name}: expected a boolean, found {}", describe(item)),
            )
        })
    }

    /// A file path: `~` expanded, relative paths resolved against the
    /// inventory's directory.
    fn path_value(
        &self,
        item: &Item,
        name: impl fmt::Display + Copy,
    ) -> Result<PathBuf, InventoryError> {
        let value = self.string(item, name)?;
        expand_path(value, self.base_dir, self.home)
            .map_err(|reason| self.error(item.span(), format!("{name}: {reason}")))
    }

    /// `transport`: `"tcp"` or `"tls"`.
    fn transport(&self, item: &Item, name: impl fmt::Display + Copy) -> Result<Transport, InventoryError> {
        let value = self.string(item, name)?;
        match value {
            "tcp" => Ok(Transport::Tcp),
            "tls" => Ok(Transport::Tls),
            _ => Err(self.error(item.span(), format!("{name}: expected \"tcp\" or \"tls\", found {value:?}"))),
        }
    }

    /// `nova_release`: a release name or major version, as a string or an
    /// integer.
    fn nova_release(
        &self,
        item: &Item,
        name: impl fmt::Display + Copy,
    ) -> Result<NovaRelease, InventoryError> {
        let parsed = match item {
            Item::Value(Value::String(s)) => NovaRelease::parse(s.value()),
            Item::Value(Value::Integer(i)) => u32::try_from(*i.value())
                .ok()
                .and_then(|n| NovaRelease::parse(&n.to_string())),
            other => {
                return Err(self.error(
                    other.span(),
                    format!(
                        "{name}: expected a release name or major version, found {}",
                        describe(other)
                    ),
                ));
            }
        };
        parsed.ok_or_else(|| {
            let found = match item.as_str() {
                Some(s) => format!("{s:?}"),
                None => item.as_integer().unwrap_or_default().to_string(),
            };
            self.error(
                item.span(),
                format!(
                    "{name}: unknown nova release {found} (expected a name such as \"mitaka\", \
                     a year such as \"2023.1\", or a major version in 9..=99)"
                ),
            )
        })
    }

    /// 1-based (line, column) of the start of `span`; (0, 0) without a span.
    fn position(&self, span: Option<Range<usize>>) -> (usize, usize) {
        match span {
            Some(span) => self.lines.position(span.start),
            None => (0, 0),
        }
    }

    fn error(&self, span: Option<Range<usize>>, message: impl Into<String>) -> InventoryError {
        let (line, column) = self.position(span);
        InventoryError {
            path: self.path.to_path_buf(),
            line,
            column,
            message: message.into(),
        }
    }
}

/// The hosts of an Ansible inventory and of the TOML's `[[hosts]]`: the Ansible
/// ones in their file's order, then the TOML-only ones. A TOML entry naming an
/// Ansible host (compared without case) wins key by key; the Ansible variables
/// fill the rest; its groups are both files' groups.
fn merge_hosts(ansible: Vec<RawHost>, toml: Vec<RawHost>) -> Vec<RawHost> {
    let mut hosts = ansible;
    let index: HashMap<String, usize> = hosts.iter().enumerate().map(|(i, h)| (h.name.to_ascii_lowercase(), i)).collect();
    for entry in toml {
        match index.get(&entry.name.to_ascii_lowercase()) {
            Some(&i) => {
                let from_ansible = std::mem::replace(&mut hosts[i], entry);
                let merged = &mut hosts[i];
                merged.address = merged.address.take().or(from_ansible.address);
                merged.connection = std::mem::take(&mut merged.connection).or(&from_ansible.connection);
                let mut groups = from_ansible.groups;
                groups.append(&mut merged.groups);
                merged.groups = groups;
            }
            None => hosts.push(entry),
        }
    }
    hosts
}

/// `Cannot read` -> `cannot read`: an OS error as a message fragment.
fn lowercase_first(reason: &str) -> String {
    let mut chars = reason.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => reason.to_string(),
    }
}

/// An ssh_config error as an inventory error; `whose` names the host that uses
/// the value.
fn config_error(e: ConfigError, whose: Option<&str>) -> InventoryError {
    InventoryError {
        path: e.path,
        line: e.line,
        column: e.column,
        message: match whose {
            Some(whose) => format!("{} (ssh_config, for {whose})", e.message),
            None => e.message,
        },
    }
}

/// UserKnownHostsFile's first file (`none`: /dev/null, no file).
fn known_hosts_file(
    ssh: &SshConfig,
    opt: &ssh_config::Opt,
    tokens: &Tokens,
) -> Result<PathBuf, ConfigError> {
    Ok(ssh_config::path(ssh, opt, tokens)?.unwrap_or_else(|| PathBuf::from("/dev/null")))
}

/// The IdentityFile lines' files, in order, without repeats (`none` skipped).
fn identity_files(
    ssh: &SshConfig,
    opts: &[&ssh_config::Opt],
    tokens: &Tokens,
) -> Result<Vec<PathBuf>, ConfigError> {
    let mut files: Vec<PathBuf> = Vec::new();
    for opt in opts {
        if let Some(path) = ssh_config::path(ssh, opt, tokens)?
            && !files.contains(&path)
        {
            files.push(path);
        }
    }
    Ok(files)
}
