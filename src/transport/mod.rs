//! SSH transport: one authenticated connection per compute host.
//!
//! [`Session::connect`] resolves the host, opens TCP within `connect_timeout`, runs
//! the SSH handshake and authentication under the same deadline, verifies the host
//! key against an OpenSSH `known_hosts` file (trust on first use only when asked),
//! and runs `id -u` once to learn whether the login user is root. Through jump hosts
//! ([`Target::jumps`], ProxyJump) each hop is such a connection too, host key verified
//! and authenticated, and the next one runs over its `direct-tcpip` channel (see
//! `tunnel.rs`); `connect_timeout` bounds the whole chain.
//! [`Session::exec`] and [`Session::run_script`] run commands with separate stdout
//! and stderr, stdin fed in, and the whole exchange bounded by `command_timeout`.
//!
//! Error messages are short lowercase fragments that also say what to do; callers
//! prefix them with the host name.

mod auth;
mod known_hosts;
mod tunnel;

use std::fmt;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::STANDARD_NO_PAD;

use known_hosts::{KnownHostsFile, Verdict};

/// libssh2: a non-blocking call would block.
const LIBSSH2_ERROR_EAGAIN: i32 = -37;
/// libssh2: a blocking call ran past the session timeout.
const LIBSSH2_ERROR_TIMEOUT: i32 = -9;
/// Bounds of the pause between polls of a non-blocking channel.
const MIN_PAUSE: Duration = Duration::from_millis(1);
const MAX_PAUSE: Duration = Duration::from_millis(10);
/// Most bytes read from one stream before the exec loop checks its deadline again.
const DRAIN_LIMIT: usize = 1024 * 1024;

/// Where and how to reach one compute host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// Host name for messages.
    pub name: String,
    /// Where to connect: an IP address or a DNS name.
    pub address: String,
    /// SSH port.
    pub port: u16,
    /// Login user.
    pub user: String,
    /// Private keys to authenticate with, after the keys of ssh-agent (if
    /// `SSH_AUTH_SOCK` is set). When empty, `~/.ssh/id_ed25519`, `id_ecdsa`,
    /// `id_rsa` (those that exist) are tried. Passphrase-protected keys are only
    /// usable through ssh-agent.
    pub identity_files: Vec<PathBuf>,
    /// OpenSSH `known_hosts` file; a missing file means every host key is unknown.
    pub known_hosts: PathBuf,
    /// Trust on first use: append an unknown host key to `known_hosts` (see
    /// [`Session::host_key_added`]). A changed key is always an error.
    pub accept_new_host_keys: bool,
    /// Bound on TCP connect, SSH handshake, authentication and the uid check together.
    pub connect_timeout: Duration,
    /// Bound on each [`Session::exec`] / [`Session::run_script`], start to exit status.
    pub command_timeout: Duration,
    /// Jump hosts, the first one reached over TCP, each next one (and then the host)
    /// through a `direct-tcpip` channel of the previous one. Empty: straight there.
    pub jumps: Vec<Hop>,
}

/// One jump host on the way to a [`Target`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hop {
    /// As written (`ops@bastion:2222`), for messages.
    pub name: String,
    pub address: String,
    pub port: u16,
    pub user: String,
    /// As [`Target::identity_files`].
    pub identity_files: Vec<PathBuf>,
    /// The jump host's key is verified against this file, under its own name.
    pub known_hosts: PathBuf,
    /// As [`Target::accept_new_host_keys`], for this jump host's key.
    pub accept_new_host_keys: bool,
}

/// A jump host a [`Session`] went through.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JumpInfo {
    /// As written ([`Hop::name`]).
    pub name: String,
    /// `address:port`.
    pub endpoint: String,
    pub user: String,
    /// Its host key, `SHA256:...`.
    pub fingerprint: String,
    /// Its key was unknown and appended to known_hosts (trust on first use).
    pub host_key_added: bool,
    /// That known_hosts file.
    pub known_hosts: PathBuf,
}

/// What one connection on the way needs: the host or a jump host.
struct Peer<'a> {
    address: &'a str,
    port: u16,
    user: &'a str,
    identity_files: &'a [PathBuf],
    known_hosts: &'a Path,
    accept_new_host_keys: bool,
}

impl Peer<'_> {
    fn endpoint(&self) -> String {
        endpoint_of(self.address, self.port)
    }
}

/// `address:port` (`[address]:port` for IPv6 literals).
fn endpoint_of(address: &str, port: u16) -> String {
    let address = bare_address(address);
    if address.contains(':') {
        format!("[{address}]:{port}")
    } else {
        format!("{address}:{port}")
    }
}

impl Target {
    /// `address:port` (`[address]:port` for IPv6 literals), as used in messages.
    pub fn endpoint(&self) -> String {
        endpoint_of(&self.address, self.port)
    }
}

/// The address without the brackets of an IPv6 literal like `[::1]`.
fn bare_address(address: &str) -> &str {
    address
        .strip_prefix('[')
        .and_then(|a| a.strip_suffix(']'))
        .unwrap_or(address)
}

/// What a remote command produced.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Output {
    /// Everything the command wrote to stdout.
    pub stdout: Vec<u8>,
    /// Everything the command wrote to stderr.
    pub stderr: Vec<u8>,
    /// Exit status; for a command killed by a signal, 128 + the signal number as in
    /// the shell (-1 for a signal this module does not know).
    pub status: i32,
}

impl Output {
    /// The command exited with status 0.
    pub fn success(&self) -> bool {
        self.status == 0
    }
}

/// Why [`Session::connect`] failed.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// The address could not be resolved.
    #[error("could not resolve {endpoint}: {error}; check the address in the inventory and DNS")]
    Resolve { endpoint: String, error: io::Error },
    /// Nothing listens on the port.
    #[error(
        "connection refused at {endpoint}; check that sshd is running and listening on that port"
    )]
    Refused { endpoint: String },
    /// TCP connect, handshake, authentication or the uid check ran past `connect_timeout`.
    #[error("timed out after {} {during} {endpoint}; check the address, firewalls and that sshd answers", secs(*.after))]
    Timeout {
        endpoint: String,
        after: Duration,
        during: &'static str,
    },
    /// TCP connect failed for another reason (unreachable network, ...).
    #[error("could not connect to {endpoint}: {error}; check the address and the network path")]
    Connect { endpoint: String, error: io::Error },
    /// The SSH protocol handshake failed.
    #[error(
        "ssh handshake with {endpoint} failed: {message}; check that an ssh server listens there"
    )]
    Handshake { endpoint: String, message: String },
    /// The host key is not in `known_hosts` and `accept_new_host_keys` is off.
    #[error(
        "host key for {endpoint} is not in {} ({fingerprint}); add it (ssh-keyscan) or set accept_new_host_keys = true",
        known_hosts.display()
    )]
    HostKeyUnknown {
        endpoint: String,
        fingerprint: String,
        known_hosts: PathBuf,
    },
    /// `known_hosts` holds a different key for the host.
    #[error(
        "HOST KEY CHANGED for {endpoint} ({}; the server now offers {fingerprint}): possible man-in-the-middle; \
         refusing to connect; if the host was reinstalled, verify the new key and remove the old one \
         with ssh-keygen -R '{}' -f {}",
        line_ref(known_hosts, *line), known_hosts::host_pattern(endpoint_host(endpoint), endpoint_port(endpoint)),
        known_hosts.display()
    )]
    HostKeyChanged {
        endpoint: String,
        fingerprint: String,
        known_hosts: PathBuf,
        line: Option<usize>,
    },
    /// `known_hosts` could not be read, or not be updated under trust on first use.
    #[error("could not {action} known_hosts file {}: {error}; fix its permissions or set known_hosts to another file", path.display())]
    KnownHosts {
        path: PathBuf,
        action: &'static str,
        error: io::Error,
    },
    /// No key was accepted.
    #[error(
        "authentication failed for user {user} (tried: {}); add the public key to the user's authorized_keys \
         on the host or load the right key into ssh-agent",
        tried_list(tried)
    )]
    Auth { user: String, tried: Vec<String> },
    /// Logged in, but `id -u` could not be run.
    #[error(
        "could not run `id -u` on {endpoint} as {user}: {message}; check that the user has a working POSIX shell"
    )]
    UserCheck {
        endpoint: String,
        user: String,
        message: String,
    },
    /// A jump host could not be reached, verified or logged in to.
    #[error("jump host {hop}: {error}")]
    Jump {
        hop: String,
        error: Box<ConnectError>,
    },
    /// The jump host did not open the connection to the next one.
    #[error(
        "jump host {via} could not open a connection to {to}: {message}; check that {to} is up, \
         that the jump host can reach it and that its sshd allows TCP forwarding"
    )]
    Tunnel {
        via: String,
        to: String,
        message: String,
    },
    /// The host, reached through jump hosts, failed as above.
    #[error("through jump host {via}: {error}")]
    Through {
        via: String,
        error: Box<ConnectError>,
    },
    /// A local failure outside the cases above.
    #[error("i/o error: {0}")]
    Io(#[from] io::Error),
}

/// Why [`Session::exec`] or [`Session::run_script`] failed.
#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    /// The command did not finish within `command_timeout`. The remote process may
    /// keep running until it next writes output or exits on its own.
    #[error("timed out after {} running {what}; raise command_timeout or check why the host is slow", secs(*.after))]
    Timeout { what: String, after: Duration },
    /// `sudo -n` refused to run the command.
    #[error("{message}")]
    Sudo { message: String },
    /// The SSH channel failed.
    #[error("ssh channel failed: {0}; the connection may have dropped: reconnect and retry")]
    Channel(io::Error),
}

/// libssh2 messages start with a capital; ours are fragments.
fn lowercase_first(message: &str) -> String {
    let mut chars = message.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// `10s`, `1.5s`.
fn secs(d: Duration) -> String {
    format!("{}s", d.as_secs_f64())
}

fn line_ref(path: &std::path::Path, line: Option<usize>) -> String {
    match line {
        Some(n) => format!("{} line {n}", path.display()),
        None => path.display().to_string(),
    }
}

fn tried_list(tried: &[String]) -> String {
    if tried.is_empty() {
        "nothing: no ssh-agent and no key in ~/.ssh; set identity_file".to_string()
    } else {
        tried.join(", ")
    }
}

/// The address part of an `address:port` / `[address]:port` endpoint.
fn endpoint_host(endpoint: &str) -> &str {
    let host = endpoint.rsplit_once(':').map_or(endpoint, |(host, _)| host);
    bare_address(host)
}

fn endpoint_port(endpoint: &str) -> u16 {
    endpoint
        .rsplit_once(':')
        .and_then(|(_, port)| port.parse().ok())
        .unwrap_or(22)
}

/// One TCP + SSH connection to a host, authenticated and with a verified host key.
///
/// `Session` is `Send`: move it to the worker thread that audits its host.
pub struct Session {
    ssh: ssh2::Session,
    endpoint: String,
    user: String,
    fingerprint: String,
    host_key_added: bool,
    is_root: bool,
    command_timeout: Duration,
    /// A channel was given up (timeout or error) and libssh2 may still wait for its
    /// close: dropping must not block on it.
    abandoned: bool,
    /// The jump hosts gone through, first first.
    jumps: Vec<JumpInfo>,
    /// Their pumps; dropped after `ssh` (field order), innermost first.
    _chain: tunnel::Chain,
}

impl fmt::Debug for Session {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Session")
            .field("endpoint", &self.endpoint)
            .field("user", &self.user)
            .field("fingerprint", &self.fingerprint)
            .field("is_root", &self.is_root)
            .finish_non_exhaustive()
    }
}

/// Channel-level failure inside one exec.
enum Fail {
    Timeout,
    Channel(io::Error),
}

impl Session {
    /// Connects, verifies the host key, authenticates and checks the remote uid, all
    /// within `t.connect_timeout` (name resolution itself is not bounded). With jump
    /// hosts, each one is connected to, verified and authenticated in turn, and the
    /// next connection goes through it; the same deadline bounds the whole chain.
    pub fn connect(t: &Target) -> Result<Session, ConnectError> {
        let deadline = Instant::now() + t.connect_timeout;
        let endpoint = t.endpoint();
        let target = Peer {
            address: &t.address,
            port: t.port,
            user: &t.user,
            identity_files: &t.identity_files,
            known_hosts: &t.known_hosts,
            accept_new_host_keys: t.accept_new_host_keys,
        };
        let hops: Vec<Peer> = t
            .jumps
            .iter()
            .map(|hop| Peer {
                address: &hop.address,
                port: hop.port,
                user: &hop.user,
                identity_files: &hop.identity_files,
                known_hosts: &hop.known_hosts,
                accept_new_host_keys: hop.accept_new_host_keys,
            })
            .collect();

        let mut chain = tunnel::Chain::default();
        let mut jumps: Vec<JumpInfo> = Vec::new();
        let (ssh, fingerprint, host_key_added) = match hops.first() {
            None => {
                let tcp = connect_tcp(&target, deadline, t.connect_timeout)?;
                establish(tcp, &target, deadline, t.connect_timeout)?
            }
            Some(first) => {
                let in_hop = |i: usize| {
                    let hop = t.jumps[i].name.clone();
                    move |error: ConnectError| ConnectError::Jump {
                        hop,
                        error: Box::new(error),
                    }
                };
                let tcp = connect_tcp(first, deadline, t.connect_timeout).map_err(in_hop(0))?;
                let mut current = establish(tcp, first, deadline, t.connect_timeout).map_err(in_hop(0))?;
                let mut index = 0;
                loop {
                    let (ssh, fingerprint, added) = current;
                    let hop = &t.jumps[index];
                    jumps.push(JumpInfo {
                        name: hop.name.clone(),
                        endpoint: hops[index].endpoint(),
                        user: hop.user.clone(),
                        fingerprint,
                        host_key_added: added,
                        known_hosts: hop.known_hosts.clone(),
                    });
                    let next = hops.get(index + 1).unwrap_or(&target);
                    let stream = open_tunnel(ssh, &hop.name, next, deadline, t.connect_timeout, &mut chain)?;
                    index += 1;
                    if index == hops.len() {
                        let through = |error: ConnectError| ConnectError::Through {
                            via: hop.name.clone(),
                            error: Box::new(error),
                        };
                        break establish(stream, next, deadline, t.connect_timeout).map_err(through)?;
                    }
                    current = establish(stream, next, deadline, t.connect_timeout).map_err(in_hop(index))?;
                }
            }
        };

        let timeout = |during| ConnectError::Timeout {
            endpoint: endpoint.clone(),
            after: t.connect_timeout,
            during,
        };
        let mut session = Session {
            ssh,
            endpoint: endpoint.clone(),
            user: t.user.clone(),
            fingerprint,
            host_key_added,
            is_root: false,
            command_timeout: t.command_timeout,
            abandoned: false,
            jumps,
            _chain: chain,
        };
        session.is_root = session.check_uid(deadline).map_err(|e| {
            let error = match e {
                Fail::Timeout => timeout("checking the login user on"),
                Fail::Channel(error) => ConnectError::UserCheck {
                    endpoint: endpoint.clone(),
                    user: t.user.clone(),
                    message: error.to_string(),
                },
            };
            match t.jumps.last() {
                Some(hop) => ConnectError::Through {
                    via: hop.name.clone(),
                    error: Box::new(error),
                },
                None => error,
            }
        })?;
        session.ssh.set_timeout(millis(t.command_timeout));
        Ok(session)
    }

    /// The jump hosts this session went through, first first (empty: direct).
    pub fn jumps(&self) -> &[JumpInfo] {
        &self.jumps
    }

    /// The server's host key as OpenSSH prints it: `SHA256:` and unpadded base64.
    pub fn host_key_fingerprint(&self) -> &str {
        &self.fingerprint
    }

    /// The bound on each command.
    pub fn command_timeout(&self) -> Duration {
        self.command_timeout
    }

    /// Change the bound on each later command (and the libssh2 session timeout).
    pub fn set_command_timeout(&mut self, timeout: Duration) {
        self.command_timeout = timeout;
        self.ssh.set_timeout(millis(timeout));
    }

    /// Whether this connect appended the host key to `known_hosts` (trust on first
    /// use); report it together with [`Session::host_key_fingerprint`].
    pub fn host_key_added(&self) -> bool {
        self.host_key_added
    }

    /// Whether the login user is root (uid 0). Determined once during
    /// [`Session::connect`] by running `id -u`, so a user named otherwise but with
    /// uid 0 counts, and a user named root without uid 0 does not.
    pub fn is_root(&self) -> bool {
        self.is_root
    }

    /// Runs `command` (a shell command line, run by the login user's shell) with
    /// `stdin` fed to it. With `as_root` and a login user that is not root, the
    /// command runs as `sudo -n -- sh -c '<command>'`. The whole exchange is bounded
    /// by `command_timeout`. A non-zero exit status is not an error: see
    /// [`Output::status`].
    pub fn exec(
        &mut self,
        command: &str,
        stdin: &[u8],
        as_root: bool,
    ) -> Result<Output, ExecError> {
        self.run(
            command,
            stdin,
            as_root,
            &format!("`{}`", abbreviate(command)),
        )
    }

    /// Like [`Session::exec`], but the command's input stays open after `stdin`:
    /// `on_stdout` sees its standard output as it arrives (in chunks, not lines) and
    /// may answer once: the bytes it returns are written to the command's input,
    /// which is then closed. The whole exchange is still bounded by one deadline,
    /// `command_timeout`; a dead connection costs that timeout once.
    pub fn exec_interactive(
        &mut self,
        command: &str,
        stdin: &[u8],
        as_root: bool,
        on_stdout: &mut dyn FnMut(&[u8]) -> Option<Vec<u8>>,
    ) -> Result<Output, ExecError> {
        let what = format!("`{}`", abbreviate(command));
        self.run_with(command, stdin, as_root, &what, Some(on_stdout))
    }

    /// Runs a POSIX sh script as root. The script is sent on stdin to `sh -s`,
    /// never on the command line, so it does not show in the remote process list;
    /// it must therefore not read stdin itself.
    pub fn run_script(&mut self, script: &str) -> Result<Output, ExecError> {
        self.run("sh -s", script.as_bytes(), true, "the script")
    }

    fn run(
        &mut self,
        command: &str,
        stdin: &[u8],
        as_root: bool,
        what: &str,
    ) -> Result<Output, ExecError> {
        self.run_with(command, stdin, as_root, what, None)
    }

    fn run_with(
        &mut self,
        command: &str,
        stdin: &[u8],
        as_root: bool,
        what: &str,
        on_stdout: Option<&mut dyn FnMut(&[u8]) -> Option<Vec<u8>>>,
    ) -> Result<Output, ExecError> {
        let deadline = Instant::now() + self.command_timeout;
        let sudo = as_root && !self.is_root;
        let line = if sudo {
            sudo_command(command)
        } else {
            command.to_string()
        };
        let output = self
            .exec_until(&line, stdin, deadline, on_stdout)
            .map_err(|e| match e {
                Fail::Timeout => ExecError::Timeout {
                    what: what.to_string(),
                    after: self.command_timeout,
                },
                Fail::Channel(error) => ExecError::Channel(error),
            })?;
        if sudo && let Some(message) = sudo_refusal(&self.user, &output) {
            return Err(ExecError::Sudo { message });
        }
        Ok(output)
    }

    /// Runs `id -u` as the login user; true for uid 0.
    fn check_uid(&mut self, deadline: Instant) -> Result<bool, Fail> {
        let output = self.exec_until("id -u", b"", deadline, None)?;
        let stdout = String::from_utf8_lossy(&output.stdout);
        if !output.success() {
            let stderr = String::from_utf8_lossy(&output.stderr);
            let message = format!("exit status {}: {}", output.status, stderr.trim());
            return Err(Fail::Channel(io::Error::other(message)));
        }
        Ok(stdout.trim() == "0")
    }

    /// Runs one command on a fresh channel in non-blocking mode, polling until the
    /// channel closes or `deadline` passes.
    fn exec_until(
        &mut self,
        command: &str,
        stdin: &[u8],
        deadline: Instant,
        on_stdout: Option<&mut dyn FnMut(&[u8]) -> Option<Vec<u8>>>,
    ) -> Result<Output, Fail> {
        self.ssh.set_blocking(false);
        let result = exec_nonblocking(&self.ssh, command, stdin, deadline, on_stdout);
        self.ssh.set_blocking(true);
        if result.is_err() {
            self.abandoned = true;
        }
        result
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        if self.abandoned {
            // libssh2 would wait for the abandoned channel's close (until its remote
            // command ends); give up politely instead: this leaks libssh2's session
            // memory, the socket is still closed.
            self.ssh.set_blocking(false);
        } else {
            self.ssh.set_timeout(1000);
        }
        let _ = self.ssh.disconnect(None, "migready done", None);
    }
}

/// Runs the SSH handshake on `stream`, verifies the host key of `peer` against its
/// known_hosts file and authenticates, before `deadline`. Returns the session (in
/// blocking mode), the key's fingerprint and whether the key was added.
fn establish<S: AsRawFd + 'static>(
    stream: S,
    peer: &Peer,
    deadline: Instant,
    connect_timeout: Duration,
) -> Result<(ssh2::Session, String, bool), ConnectError> {
    let endpoint = peer.endpoint();
    let timeout = |during| ConnectError::Timeout {
        endpoint: endpoint.clone(),
        after: connect_timeout,
        during,
    };
    let known = KnownHostsFile::load(peer.known_hosts).map_err(|error| ConnectError::KnownHosts {
        path: peer.known_hosts.to_path_buf(),
        action: "read",
        error,
    })?;

    let mut ssh = ssh2::Session::new().map_err(io::Error::from)?;
    let host = known_hosts::host_pattern(bare_address(peer.address), peer.port);
    known_hosts::prefer_key_types(&ssh, &known.key_types_for(&ssh, &host));
    ssh.set_tcp_stream(stream);
    ssh.set_blocking(true);

    const HANDSHAKE: &str = "waiting for the ssh handshake from";
    set_budget(&ssh, deadline).ok_or_else(|| timeout(HANDSHAKE))?;
    ssh.handshake().map_err(|e| {
        if e.code() == ssh2::ErrorCode::Session(LIBSSH2_ERROR_TIMEOUT) {
            timeout(HANDSHAKE)
        } else {
            ConnectError::Handshake {
                endpoint: endpoint.clone(),
                message: lowercase_first(e.message()),
            }
        }
    })?;

    let no_key = || ConnectError::Handshake {
        endpoint: endpoint.clone(),
        message: "the server sent no host key".into(),
    };
    let key = ssh.host_key().ok_or_else(no_key)?.0.to_vec();
    let fingerprint = format!(
        "SHA256:{}",
        STANDARD_NO_PAD.encode(ssh.host_key_hash(ssh2::HashType::Sha256).ok_or_else(no_key)?)
    );
    let verdict = known.verify(&ssh, &host, &key).map_err(|e| ConnectError::KnownHosts {
        path: peer.known_hosts.to_path_buf(),
        action: "check",
        error: e.into(),
    })?;
    let host_key_added = match verdict {
        Verdict::Known => false,
        Verdict::Unknown if peer.accept_new_host_keys => {
            known.append(&host, &key).map_err(|error| ConnectError::KnownHosts {
                path: peer.known_hosts.to_path_buf(),
                action: "add the host key to",
                error,
            })?;
            true
        }
        Verdict::Unknown => {
            return Err(ConnectError::HostKeyUnknown {
                endpoint,
                fingerprint,
                known_hosts: peer.known_hosts.to_path_buf(),
            });
        }
        Verdict::Changed { line } => {
            return Err(ConnectError::HostKeyChanged {
                endpoint,
                fingerprint,
                known_hosts: peer.known_hosts.to_path_buf(),
                line: Some(line),
            });
        }
    };

    const AUTH: &str = "authenticating to";
    set_budget(&ssh, deadline).ok_or_else(|| timeout(AUTH))?;
    auth::authenticate(&ssh, peer.user, peer.identity_files).map_err(|failure| match failure {
        auth::AuthFailure::Timeout => timeout(AUTH),
        auth::AuthFailure::Rejected(tried) => ConnectError::Auth {
            user: peer.user.to_string(),
            tried,
        },
    })?;
    Ok((ssh, fingerprint, host_key_added))
}

/// Opens a `direct-tcpip` channel on the jump host's session `ssh` (named `via`)
/// to `next`, before `deadline`, and bridges it to a socket (the link joins
/// `chain`); returns the socket for the next session.
fn open_tunnel(
    ssh: ssh2::Session,
    via: &str,
    next: &Peer,
    deadline: Instant,
    connect_timeout: Duration,
    chain: &mut tunnel::Chain,
) -> Result<std::os::unix::net::UnixStream, ConnectError> {
    let to = next.endpoint();
    set_budget(&ssh, deadline).ok_or_else(|| ConnectError::Timeout {
        endpoint: to.clone(),
        after: connect_timeout,
        during: "opening a connection through the jump host to",
    })?;
    let channel = match ssh.channel_direct_tcpip(bare_address(next.address), next.port, None) {
        Ok(channel) => channel,
        Err(e) if e.code() == ssh2::ErrorCode::Session(LIBSSH2_ERROR_TIMEOUT) => {
            return Err(ConnectError::Timeout {
                endpoint: to,
                after: connect_timeout,
                during: "opening a connection through the jump host to",
            });
        }
        Err(e) => {
            return Err(ConnectError::Tunnel {
                via: via.to_string(),
                to,
                message: lowercase_first(e.message()),
            });
        }
    };
    let (link, stream) = tunnel::bridge(ssh, channel)?;
    chain.push(link);
    Ok(stream)
}

/// Opens TCP to the first address of `peer` that answers before `deadline`.
fn connect_tcp(peer: &Peer, deadline: Instant, connect_timeout: Duration) -> Result<TcpStream, ConnectError> {
    let endpoint = &peer.endpoint();
    let resolve_error = |error| ConnectError::Resolve {
        endpoint: endpoint.to_string(),
        error,
    };
    let addrs: Vec<SocketAddr> = (bare_address(peer.address), peer.port)
        .to_socket_addrs()
        .map_err(resolve_error)?
        .collect();
    if addrs.is_empty() {
        return Err(resolve_error(io::Error::new(
            io::ErrorKind::NotFound,
            "no addresses found",
        )));
    }
    let mut last_error = None;
    for addr in &addrs {
        let Some(left) = deadline
            .checked_duration_since(Instant::now())
            .filter(|d| !d.is_zero())
        else {
            break;
        };
        match TcpStream::connect_timeout(addr, left) {
            Ok(stream) => return Ok(stream),
            Err(e) => last_error = Some(e),
        }
    }
    let endpoint = endpoint.to_string();
    Err(match last_error {
        Some(e) if e.kind() == io::ErrorKind::ConnectionRefused => {
            ConnectError::Refused { endpoint }
        }
        Some(e)
            if !matches!(
                e.kind(),
                io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock
            ) =>
        {
            ConnectError::Connect { endpoint, error: e }
        }
        _ => ConnectError::Timeout {
            endpoint,
            after: connect_timeout,
            during: "connecting to",
        },
    })
}

/// Sets the libssh2 timeout of the next blocking calls to the time left; None when
/// none is left.
fn set_budget(ssh: &ssh2::Session, deadline: Instant) -> Option<()> {
    let left = deadline
        .checked_duration_since(Instant::now())
        .filter(|d| !d.is_zero())?;
    ssh.set_timeout(millis(left));
    Some(())
}

/// Milliseconds for libssh2 (0 would mean "no timeout", so at least 1).
fn millis(d: Duration) -> u32 {
    d.as_millis().clamp(1, u32::MAX as u128) as u32
}

/// The body of [`Session::exec_until`]; `ssh` is in non-blocking mode.
fn exec_nonblocking(
    ssh: &ssh2::Session,
    command: &str,
    stdin: &[u8],
    deadline: Instant,
    on_stdout: Option<&mut dyn FnMut(&[u8]) -> Option<Vec<u8>>>,
) -> Result<Output, Fail> {
    let mut channel = retry(deadline, || ssh.channel_session())?;
    let result = pump(&mut channel, command, stdin, deadline, on_stdout);
    if result.is_err() {
        // Ask the server to close; do not wait for it.
        let _ = channel.close();
    }
    result
}

/// Starts `command` on `channel`, feeds `stdin`, collects stdout and stderr as
/// they come (neither can fill the channel window and stall the other), then waits
/// for the close and the exit status. With `on_stdout`, the input stays open until
/// it answers (see [`Session::exec_interactive`]).
fn pump(
    channel: &mut ssh2::Channel,
    command: &str,
    stdin: &[u8],
    deadline: Instant,
    mut on_stdout: Option<&mut dyn FnMut(&[u8]) -> Option<Vec<u8>>>,
) -> Result<Output, Fail> {
    retry(deadline, || channel.exec(command))?;
    let mut stdin: std::borrow::Cow<[u8]> = std::borrow::Cow::Borrowed(stdin);
    let mut hold = on_stdout.is_some();
    let mut output = Output::default();
    let mut buf = vec![0u8; 64 * 1024];
    let mut sent = 0;
    let mut eof_sent = false;
    let mut pause = Pause::default();
    loop {
        if Instant::now() >= deadline {
            return Err(Fail::Timeout);
        }
        let mut progress = false;
        if !eof_sent && sent < stdin.len() {
            match channel.write(&stdin[sent..]) {
                Ok(n) => {
                    sent += n;
                    progress |= n > 0;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                // The command finished without reading all its input: fine.
                Err(_) if channel.eof() => eof_sent = true,
                Err(e) => return Err(Fail::Channel(e)),
            }
        }
        if !eof_sent && !hold && sent == stdin.len() {
            match channel.send_eof() {
                Ok(()) => {
                    eof_sent = true;
                    progress = true;
                }
                Err(e) if is_eagain(&e) => {}
                Err(e) => return Err(Fail::Channel(e.into())),
            }
        }
        let seen = output.stdout.len();
        progress |= drain(&mut channel.stream(0), &mut output.stdout, &mut buf)?;
        if output.stdout.len() > seen
            && let Some(f) = on_stdout.as_mut()
            && let Some(reply) = f(&output.stdout[seen..])
            && hold
        {
            let mut all = stdin.into_owned();
            all.extend_from_slice(&reply);
            stdin = std::borrow::Cow::Owned(all);
            hold = false;
        }
        progress |= drain(&mut channel.stderr(), &mut output.stderr, &mut buf)?;
        if channel.eof() {
            break;
        }
        if progress {
            pause.reset();
        } else {
            pause.wait(deadline)?;
        }
    }
    retry(deadline, || channel.wait_close())?;
    let status = channel.exit_status().map_err(|e| Fail::Channel(e.into()))?;
    let signal = channel.exit_signal().ok().and_then(|s| s.exit_signal);
    output.status = match signal {
        Some(name) => signal_number(&name).map_or(-1, |n| 128 + n),
        None => status,
    };
    retry(deadline, || channel.close())?;
    Ok(output)
}

/// Reads what `stream` has now into `out`, at most [`DRAIN_LIMIT`] bytes so that a
/// command that never stops writing cannot keep the caller from its deadline check;
/// true if anything was read.
fn drain(stream: &mut impl Read, out: &mut Vec<u8>, buf: &mut [u8]) -> Result<bool, Fail> {
    let mut read = 0;
    while read < DRAIN_LIMIT {
        match stream.read(buf) {
            Ok(0) => break,
            Ok(n) => {
                out.extend_from_slice(&buf[..n]);
                read += n;
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(Fail::Channel(e)),
        }
    }
    Ok(read > 0)
}

/// Repeats a non-blocking libssh2 call until it stops asking to be called again.
fn retry<T>(deadline: Instant, mut op: impl FnMut() -> Result<T, ssh2::Error>) -> Result<T, Fail> {
    let mut pause = Pause::default();
    loop {
        match op() {
            Ok(value) => return Ok(value),
            Err(e) if is_eagain(&e) => pause.wait(deadline)?,
            Err(e) => return Err(Fail::Channel(e.into())),
        }
    }
}

fn is_eagain(e: &ssh2::Error) -> bool {
    e.code() == ssh2::ErrorCode::Session(LIBSSH2_ERROR_EAGAIN)
}

/// Growing sleep between polls of an idle channel (1 ms, doubling up to 10 ms).
struct Pause(Duration);

impl Default for Pause {
    fn default() -> Self {
        Pause(MIN_PAUSE)
    }
}

impl Pause {
    fn wait(&mut self, deadline: Instant) -> Result<(), Fail> {
        let left = deadline
            .checked_duration_since(Instant::now())
            .filter(|d| !d.is_zero())
            .ok_or(Fail::Timeout)?;
        std::thread::sleep(self.0.min(left));
        self.0 = (self.0 * 2).min(MAX_PAUSE);
        Ok(())
    }

    fn reset(&mut self) {
        self.0 = MIN_PAUSE;
    }
}

/// Linux numbers of the signals SSH names (RFC 4254 lists them without `SIG`).
fn signal_number(name: &str) -> Option<i32> {
    Some(match name {
        "HUP" => 1,
        "INT" => 2,
        "QUIT" => 3,
        "ILL" => 4,
        "ABRT" => 6,
        "FPE" => 8,
        "KILL" => 9,
        "USR1" => 10,
        "SEGV" => 11,
        "USR2" => 12,
        "PIPE" => 13,
        "ALRM" => 14,
        "TERM" => 15,
        _ => return None,
    })
}

/// `command` run as root through `sudo -n` (never asks for a password), by
/// `sh -c` so that a whole command line, pipes and all, runs as root.
fn sudo_command(command: &str) -> String {
    format!("sudo -n -- sh -c {}", crate::shell::quote(command))
}

/// The first line of `command`, cut to 60 characters, for messages.
fn abbreviate(command: &str) -> String {
    let first = command.lines().next().unwrap_or("");
    let cut: String = first.chars().take(60).collect();
    if cut.len() < command.len() {
        format!("{cut}…")
    } else {
        cut
    }
}

/// Recognises `sudo -n` refusing to run the command, from its exit status 1 (127
/// when sudo is missing) and its message on stderr.
fn sudo_refusal(user: &str, output: &Output) -> Option<String> {
    let stderr = String::from_utf8_lossy(&output.stderr);
    let said = |needle: &str| stderr.lines().any(|line| line.contains(needle));
    match output.status {
        1 if said("sudo: a password is required") => Some(format!(
            "sudo requires a password for user {user}; configure passwordless sudo (NOPASSWD) or log in as root"
        )),
        1 if said("is not in the sudoers file") || said("is not allowed to execute") => {
            Some(format!(
                "user {user} may not run commands as root with sudo; allow it in sudoers (NOPASSWD) or log in as root"
            ))
        }
        1 if said("you must have a tty to run sudo") => Some(format!(
            "sudo requires a tty for user {user} (Defaults requiretty); disable requiretty for this user or log in as root"
        )),
        127 if said("sudo: not found") || said("sudo: command not found") => {
            Some("sudo is not installed on the host; install it or log in as root".to_string())
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_is_send() {
        fn assert_send<T: Send>() {}
        assert_send::<Session>();
    }

    #[test]
    fn commands_as_root_are_one_word_for_sh_c() {
        assert_eq!(sudo_command("sh -s"), "sudo -n -- sh -c 'sh -s'");
        assert_eq!(sudo_command("echo 'a b'"), r"sudo -n -- sh -c 'echo '\''a b'\'''");
        // What `sh -c` receives is the command, unchanged.
        for command in [r"printf %s 'it'\''s'", r#"printf '%s' "$(echo x)""#, "printf 'a\nb'"] {
            let line = sudo_command(command);
            let quoted = line.strip_prefix("sudo -n -- sh -c ").unwrap();
            let out = std::process::Command::new("sh").arg("-c").arg(format!("printf %s {quoted}")).output().unwrap();
            assert_eq!(String::from_utf8(out.stdout).unwrap(), command);
        }
    }

    #[test]
    fn endpoints() {
        let mut t = Target {
            name: "c1".into(),
            address: "198.18.42.11".into(),
            port: 22,
            user: "ops".into(),
            identity_files: vec![],
            known_hosts: "/root/.ssh/known_hosts".into(),
            accept_new_host_keys: false,
            connect_timeout: Duration::from_secs(10),
            command_timeout: Duration::from_secs(60),
            jumps: vec![],
        };
        assert_eq!(t.endpoint(), "198.18.42.11:22");
        t.address = "[fd00::1]".into();
        assert_eq!(t.endpoint(), "[fd00::1]:22");
        assert_eq!(endpoint_host(&t.endpoint()), "fd00::1");
        assert_eq!(endpoint_port("[fd00::1]:2222"), 2222);
    }

    #[test]
    fn messages_read_as_fragments() {
        let e = ConnectError::Timeout {
            endpoint: "198.18.42.11:22".into(),
            after: Duration::from_secs(10),
            during: "connecting to",
        };
        assert!(
            e.to_string()
                .starts_with("timed out after 10s connecting to 198.18.42.11:22; ")
        );
        let e = ConnectError::Auth {
            user: "ops".into(),
            tried: vec!["agent".into(), "/root/.ssh/id_ed25519".into()],
        };
        assert!(e.to_string().starts_with(
            "authentication failed for user ops (tried: agent, /root/.ssh/id_ed25519); "
        ));
        let e = ConnectError::HostKeyChanged {
            endpoint: "198.18.42.11:2222".into(),
            fingerprint: "SHA256:abc".into(),
            known_hosts: "/root/.ssh/known_hosts".into(),
            line: Some(3),
        };
        let text = e.to_string();
        assert!(
            text.starts_with(
                "HOST KEY CHANGED for 198.18.42.11:2222 (/root/.ssh/known_hosts line 3;"
            ),
            "{text}"
        );
        assert!(
            text.contains("ssh-keygen -R '[198.18.42.11]:2222' -f /root/.ssh/known_hosts"),
            "{text}"
        );
    }

    #[test]
    fn sudo_refusals_are_recognised() {
        let out = |status, stderr: &str| Output {
            stdout: vec![],
            stderr: stderr.into(),
            status,
        };
        let msg = sudo_refusal("ops", &out(1, "sudo: a password is required\n")).unwrap();
        assert_eq!(
            msg,
            "sudo requires a password for user ops; configure passwordless sudo (NOPASSWD) or log in as root"
        );
        assert!(sudo_refusal("ops", &out(1, "ops is not in the sudoers file.\n")).is_some());
        assert!(sudo_refusal("ops", &out(1, "grep: no match\n")).is_none());
        assert!(sudo_refusal("ops", &out(2, "sudo: a password is required\n")).is_none());
        assert!(sudo_refusal("ops", &out(127, "sh: 1: sudo: not found\n")).is_some());
    }

    #[test]
    fn abbreviation() {
        assert_eq!(abbreviate("sleep 30"), "sleep 30");
        assert_eq!(abbreviate("a\nb"), "a…");
        assert_eq!(abbreviate(&"x".repeat(70)).chars().count(), 61);
    }
}
