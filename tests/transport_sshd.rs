//! `migready::transport` against a real OpenSSH server.
//!
//! Every test starts its own `/usr/sbin/sshd -D` on 127.0.0.1 and a free port, with
//! host keys, client keys and `known_hosts` in a temporary directory. Needs root
//! (sshd's privilege separation), `openssh-server` (sshd, ssh-keygen) and, for the
//! sudo test, `sudo` and `useradd`. Without sshd the tests are skipped loudly; set
//! `MIGREADY_REQUIRE_SSHD=1` to make that a failure instead (CI).

mod common;

use std::fs;
use std::io::Write;
use std::net::TcpListener;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use migready::transport::*;
use tempfile::TempDir;

const SSHD: &str = "/usr/sbin/sshd";

/// A private sshd and the files a client needs to reach it.
struct Sshd {
    dir: TempDir,
    port: u16,
    child: Child,
    /// Client key listed in `authorized_keys`.
    client_key: PathBuf,
}

/// Whether the environment can run sshd; prints a loud reason when not.
fn can_run_sshd() -> bool {
    let missing = if !Path::new(SSHD).exists() {
        Some(format!("{SSHD} not found; install openssh-server"))
    } else if !nix::unistd::getuid().is_root() {
        Some("not running as root (sshd privilege separation needs root)".to_string())
    } else {
        None
    };
    common::may_run("transport sshd test", missing)
}

/// Starts a test sshd, or returns from the test (skipped) when that is impossible.
macro_rules! sshd_or_skip {
    ($($host_key_type:expr),*) => {{
        if !can_run_sshd() {
            return;
        }
        Sshd::start(&[$($host_key_type),*])
    }};
}

fn keygen(path: &Path, key_type: &str, passphrase: &str) {
    let status = Command::new("ssh-keygen")
        .args([
            "-q",
            "-t",
            key_type,
            "-N",
            passphrase,
            "-C",
            "migready-test",
            "-f",
        ])
        .arg(path)
        .stdin(Stdio::null())
        .status()
        .expect("run ssh-keygen");
    assert!(status.success(), "ssh-keygen -t {key_type} failed");
}

/// `type base64` of a public key file.
fn public_key(private: &Path) -> String {
    let text = fs::read_to_string(private.with_extension("pub")).expect("read .pub");
    text.split_whitespace()
        .take(2)
        .collect::<Vec<_>>()
        .join(" ")
}

/// The SHA256 fingerprint ssh-keygen reports for a key file.
fn ssh_keygen_fingerprint(private: &Path) -> String {
    let out = Command::new("ssh-keygen")
        .args(["-l", "-E", "sha256", "-f"])
        .arg(private.with_extension("pub"))
        .output()
        .unwrap();
    String::from_utf8(out.stdout)
        .unwrap()
        .split_whitespace()
        .nth(1)
        .unwrap()
        .to_string()
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Sshd {
    /// Starts sshd with host keys of the given types (ed25519 when none given).
    fn start(host_key_types: &[&str]) -> Sshd {
        let host_key_types = if host_key_types.is_empty() {
            &["ed25519"][..]
        } else {
            host_key_types
        };
        let dir = tempfile::tempdir().unwrap();
        let mut config = String::new();
        for key_type in host_key_types {
            let path = dir.path().join(format!("host_{key_type}"));
            keygen(&path, key_type, "");
            config.push_str(&format!("HostKey {}\n", path.display()));
        }
        let client_key = dir.path().join("client_key");
        keygen(&client_key, "ed25519", "");
        fs::write(
            dir.path().join("authorized_keys"),
            public_key(&client_key) + "\n",
        )
        .unwrap();
        config.push_str(&format!(
            "ListenAddress 127.0.0.1\nAuthorizedKeysFile {}/authorized_keys\nStrictModes no\nPidFile none\nUsePAM no\n\
             PermitRootLogin prohibit-password\nPasswordAuthentication no\nKbdInteractiveAuthentication no\nLogLevel VERBOSE\n",
            dir.path().display()
        ));
        let config_path = dir.path().join("sshd_config");
        fs::write(&config_path, config).unwrap();
        // sshd's privilege separation directory (created by the service unit normally).
        if !Path::new("/run/sshd").exists() {
            fs::create_dir_all("/run/sshd").unwrap();
            fs::set_permissions("/run/sshd", fs::Permissions::from_mode(0o755)).unwrap();
        }

        let log_path = dir.path().join("sshd.log");
        for _attempt in 0..5 {
            let port = free_port();
            let log = fs::File::create(&log_path).unwrap();
            let mut child = Command::new(SSHD)
                .args(["-D", "-e", "-f"])
                .arg(&config_path)
                .args(["-p", &port.to_string()])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(log)
                .spawn()
                .expect("spawn sshd");
            let started = Instant::now();
            while started.elapsed() < Duration::from_secs(10) {
                let log = fs::read_to_string(&log_path).unwrap_or_default();
                if log.contains("Server listening on") {
                    return Sshd {
                        dir,
                        port,
                        child,
                        client_key,
                    };
                }
                if let Some(status) = child.try_wait().unwrap() {
                    if log.contains("Address already in use") {
                        break;
                    }
                    panic!("sshd exited ({status}) before listening:\n{log}");
                }
                thread::sleep(Duration::from_millis(20));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        panic!(
            "sshd did not start:\n{}",
            fs::read_to_string(&log_path).unwrap_or_default()
        );
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// The `known_hosts` line for this server's host key of `key_type`.
    fn known_line(&self, key_type: &str) -> String {
        format!(
            "[127.0.0.1]:{} {}",
            self.port,
            public_key(&self.path(&format!("host_{key_type}")))
        )
    }

    /// A target for root with the client key and a `known_hosts` file holding the
    /// server's ed25519 key.
    fn target(&self) -> Target {
        let known_hosts = self.path("known_hosts");
        fs::write(&known_hosts, self.known_line("ed25519") + "\n").unwrap();
        Target {
            name: "test-host".into(),
            address: "127.0.0.1".into(),
            port: self.port,
            user: "root".into(),
            identity_files: vec![self.client_key.clone()],
            known_hosts,
            accept_new_host_keys: false,
            connect_timeout: Duration::from_secs(10),
            command_timeout: Duration::from_secs(60),
            jumps: vec![],
        }
    }

    fn connect(&self, target: &Target) -> Session {
        Session::connect(target)
            .unwrap_or_else(|e| panic!("connect: {e}\nsshd log:\n{}", self.log()))
    }

    fn log(&self) -> String {
        fs::read_to_string(self.path("sshd.log")).unwrap_or_default()
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn exec_returns_stdout_stderr_and_status() {
    let sshd = sshd_or_skip!();
    let mut session = sshd.connect(&sshd.target());
    assert!(session.is_root());
    assert!(!session.host_key_added());
    assert_eq!(
        session.host_key_fingerprint(),
        ssh_keygen_fingerprint(&sshd.path("host_ed25519"))
    );

    let out = session
        .exec("echo out; echo err >&2; exit 3", b"", false)
        .unwrap();
    assert_eq!(text(&out.stdout), "out\n");
    assert_eq!(text(&out.stderr), "err\n");
    assert_eq!(out.status, 3);
    assert!(!out.success());

    let out = session.exec("true", b"", true).unwrap();
    assert_eq!(
        out,
        Output {
            stdout: vec![],
            stderr: vec![],
            status: 0
        }
    );

    // Killed by a signal: 128 + signal number, as in the shell.
    let out = session.exec("kill -TERM $$", b"", false).unwrap();
    assert_eq!(out.status, 143);

    // The command runs in the login shell; quotes survive (also under as_root).
    let out = session
        .exec("printf '%s|' 'a b' \"c'd\"", b"", true)
        .unwrap();
    assert_eq!(text(&out.stdout), "a b|c'd|");
}

#[test]
fn exec_collects_large_interleaved_output() {
    let sshd = sshd_or_skip!();
    let mut session = sshd.connect(&sshd.target());

    // 128 rounds of 8 KiB stdout and 800 B stderr: 1 MiB and 100 KiB interleaved.
    let script = "i=0; while [ $i -lt 128 ]; do head -c 8192 /dev/zero | tr '\\0' o; \
                  head -c 800 /dev/zero | tr '\\0' e >&2; i=$((i+1)); done";
    let started = Instant::now();
    let out = session.exec(script, b"", false).unwrap();
    assert_eq!(
        out.status,
        0,
        "stderr: {}",
        text(&out.stderr[..out.stderr.len().min(200)])
    );
    assert_eq!(out.stdout.len(), 1024 * 1024);
    assert!(out.stdout.iter().all(|&b| b == b'o'));
    assert_eq!(out.stderr.len(), 102_400);
    assert!(out.stderr.iter().all(|&b| b == b'e'));
    eprintln!("1 MiB + 100 KiB interleaved in {:?}", started.elapsed());

    // 3 MB of stderr before any stdout: more than a channel window, so reading
    // stdout alone would stall.
    let out = session
        .exec("head -c 3000000 /dev/zero >&2; echo done", b"", false)
        .unwrap();
    assert_eq!(out.stderr.len(), 3_000_000);
    assert_eq!(text(&out.stdout), "done\n");
    assert_eq!(out.status, 0);
}

#[test]
fn stdin_round_trips_through_cat() {
    let sshd = sshd_or_skip!();
    let mut session = sshd.connect(&sshd.target());

    let input: Vec<u8> = (0..1024 * 1024u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let out = session.exec("cat", &input, false).unwrap();
    assert_eq!(out.status, 0);
    assert!(
        out.stdout == input,
        "cat returned {} bytes, want {}",
        out.stdout.len(),
        input.len()
    );

    let out = session.exec("cat; echo end", b"", false).unwrap();
    assert_eq!(text(&out.stdout), "end\n");

    // A command that ignores its stdin still completes.
    let out = session.exec("echo ignored", &input, false).unwrap();
    assert_eq!(text(&out.stdout), "ignored\n");
}

#[test]
fn run_script_runs_a_multi_line_script_from_stdin() {
    let sshd = sshd_or_skip!();
    let mut session = sshd.connect(&sshd.target());
    let script = r#"set -eu
greet() { printf 'hello %s\n' "$1"; }
greet "it's me"
n=0
for x in a b c; do n=$((n + 1)); done
echo "count=$n"
cat <<EOF
heredoc line
EOF
echo "uid=$(id -u)"
# the script is not on the command line: the process runs as plain `sh -s`
tr '\0' ' ' < /proc/$$/cmdline; echo
echo warn >&2
exit 7
"#;
    let out = session.run_script(script).unwrap();
    assert_eq!(out.status, 7, "stderr: {}", text(&out.stderr));
    let stdout = text(&out.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(
        lines[..4],
        ["hello it's me", "count=3", "heredoc line", "uid=0"]
    );
    assert_eq!(lines[4].trim(), "sh -s");
    assert_eq!(text(&out.stderr), "warn\n");
}

#[test]
fn unknown_host_key_is_refused() {
    let sshd = sshd_or_skip!();
    let mut target = sshd.target();

    // Missing file: every key is unknown, and nothing is created.
    target.known_hosts = sshd.path("missing/known_hosts");
    match Session::connect(&target) {
        Err(ConnectError::HostKeyUnknown {
            fingerprint,
            known_hosts,
            ..
        }) => {
            assert_eq!(
                fingerprint,
                ssh_keygen_fingerprint(&sshd.path("host_ed25519"))
            );
            assert_eq!(known_hosts, target.known_hosts);
        }
        other => panic!("want HostKeyUnknown, got {other:?}"),
    }
    assert!(!target.known_hosts.exists());

    // A file that knows other hosts only (same address on port 22, another port).
    target.known_hosts = sshd.path("others");
    let other_key = sshd.path("other_key");
    keygen(&other_key, "ed25519", "");
    fs::write(
        &target.known_hosts,
        format!(
            "127.0.0.1 {0}\n[127.0.0.1]:1 {0}\n[10.0.0.1]:{1} {0}\n",
            public_key(&other_key),
            sshd.port
        ),
    )
    .unwrap();
    let err = Session::connect(&target).unwrap_err();
    assert!(
        matches!(err, ConnectError::HostKeyUnknown { .. }),
        "{err:?}"
    );
    let message = err.to_string();
    assert!(
        message.starts_with(&format!("host key for 127.0.0.1:{} is not in ", sshd.port)),
        "{message}"
    );
    assert!(
        message.ends_with("add it (ssh-keyscan) or set accept_new_host_keys = true"),
        "{message}"
    );
}

#[test]
fn accept_new_appends_exactly_one_line() {
    let sshd = sshd_or_skip!();
    let mut target = sshd.target();
    target.known_hosts = sshd.path("new/dir/known_hosts");
    target.accept_new_host_keys = true;

    let session = sshd.connect(&target);
    assert!(session.host_key_added());
    drop(session);
    let content = fs::read_to_string(&target.known_hosts).unwrap();
    assert_eq!(content, sshd.known_line("ed25519") + "\n");
    let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&target.known_hosts), 0o600);
    assert_eq!(mode(&sshd.path("new/dir")), 0o700);
    assert_eq!(mode(&sshd.path("new")), 0o700);

    // Now known: accepted without trust on first use, and nothing is added.
    target.accept_new_host_keys = false;
    let session = sshd.connect(&target);
    assert!(!session.host_key_added());
    assert_eq!(fs::read_to_string(&target.known_hosts).unwrap(), content);

    // An existing file keeps its lines, even without a final newline.
    target.known_hosts = sshd.path("existing");
    let existing = "# comment\nexample.org ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl";
    fs::write(&target.known_hosts, existing).unwrap();
    target.accept_new_host_keys = true;
    assert!(sshd.connect(&target).host_key_added());
    let content = fs::read_to_string(&target.known_hosts).unwrap();
    assert_eq!(
        content,
        format!("{existing}\n{}\n", sshd.known_line("ed25519"))
    );
}

#[test]
fn changed_host_key_is_refused_naming_the_line() {
    let sshd = sshd_or_skip!();
    let mut target = sshd.target();
    let other_key = sshd.path("other_key");
    keygen(&other_key, "ed25519", "");
    fs::write(
        &target.known_hosts,
        format!(
            "# comment\nexample.org {0}\n[127.0.0.1]:{1} {0}\nunparsable line\n",
            public_key(&other_key),
            sshd.port
        ),
    )
    .unwrap();
    for accept_new in [false, true] {
        target.accept_new_host_keys = accept_new;
        match Session::connect(&target) {
            Err(e @ ConnectError::HostKeyChanged { .. }) => {
                let ConnectError::HostKeyChanged {
                    line,
                    ref fingerprint,
                    ..
                } = e
                else {
                    unreachable!()
                };
                assert_eq!(line, Some(3));
                assert_eq!(
                    *fingerprint,
                    ssh_keygen_fingerprint(&sshd.path("host_ed25519"))
                );
                let message = e.to_string();
                assert!(
                    message.starts_with(&format!("HOST KEY CHANGED for 127.0.0.1:{} (", sshd.port)),
                    "{message}"
                );
                assert!(message.contains("known_hosts line 3"), "{message}");
                assert!(
                    message.contains("possible man-in-the-middle; refusing to connect"),
                    "{message}"
                );
            }
            other => panic!("want HostKeyChanged, got {other:?}"),
        }
    }
    assert_eq!(
        fs::read_to_string(&target.known_hosts)
            .unwrap()
            .lines()
            .count(),
        4
    );
}

#[test]
fn hashed_known_hosts_entries_work() {
    let sshd = sshd_or_skip!();
    let target = sshd.target();
    let status = Command::new("ssh-keygen")
        .arg("-H")
        .arg("-f")
        .arg(&target.known_hosts)
        .output()
        .unwrap();
    assert!(
        status.status.success(),
        "ssh-keygen -H: {}",
        text(&status.stderr)
    );
    let content = fs::read_to_string(&target.known_hosts).unwrap();
    assert!(
        content.starts_with("|1|") && !content.contains("127.0.0.1"),
        "{content}"
    );

    let mut session = sshd.connect(&target);
    assert_eq!(
        text(&session.exec("echo hi", b"", false).unwrap().stdout),
        "hi\n"
    );

    // A hashed entry with another key is a changed key too.
    let other_key = sshd.path("other_key");
    keygen(&other_key, "ed25519", "");
    let hashed_name = content.split_whitespace().next().unwrap();
    fs::write(
        &target.known_hosts,
        format!("{hashed_name} {}\n", public_key(&other_key)),
    )
    .unwrap();
    let err = Session::connect(&target).unwrap_err();
    assert!(
        matches!(err, ConnectError::HostKeyChanged { line: Some(1), .. }),
        "{err:?}"
    );
}

#[test]
fn a_known_key_type_is_negotiated_first() {
    let sshd = sshd_or_skip!("ed25519", "ecdsa");
    let target = sshd.target();
    // Only the ECDSA key is known: libssh2 would prefer Ed25519 and see a "changed" key.
    fs::write(&target.known_hosts, sshd.known_line("ecdsa") + "\n").unwrap();
    let session = sshd.connect(&target);
    assert_eq!(
        session.host_key_fingerprint(),
        ssh_keygen_fingerprint(&sshd.path("host_ecdsa"))
    );
    drop(session);
    fs::write(&target.known_hosts, sshd.known_line("ed25519") + "\n").unwrap();
    let session = sshd.connect(&target);
    assert_eq!(
        session.host_key_fingerprint(),
        ssh_keygen_fingerprint(&sshd.path("host_ed25519"))
    );
}

#[test]
fn closed_port_is_refused_quickly() {
    let dir = tempfile::tempdir().unwrap();
    let target = Target {
        name: "nothing".into(),
        address: "127.0.0.1".into(),
        port: free_port(),
        user: "root".into(),
        identity_files: vec![],
        known_hosts: dir.path().join("known_hosts"),
        accept_new_host_keys: false,
        connect_timeout: Duration::from_secs(10),
        command_timeout: Duration::from_secs(10),
        jumps: vec![],
    };
    let started = Instant::now();
    let err = Session::connect(&target).unwrap_err();
    assert!(matches!(err, ConnectError::Refused { .. }), "{err:?}");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "took {:?}",
        started.elapsed()
    );
    assert_eq!(
        err.to_string(),
        format!(
            "connection refused at 127.0.0.1:{}; check that sshd is running and listening on that port",
            target.port
        )
    );
}

#[test]
fn silent_server_times_out_after_connect_timeout() {
    // Accepts TCP, never speaks SSH.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    thread::spawn(move || {
        let (_stream, _) = listener.accept().unwrap();
        thread::sleep(Duration::from_secs(30));
    });
    let dir = tempfile::tempdir().unwrap();
    let connect_timeout = Duration::from_secs(2);
    let target = Target {
        name: "silent".into(),
        address: "127.0.0.1".into(),
        port,
        user: "root".into(),
        identity_files: vec![],
        known_hosts: dir.path().join("known_hosts"),
        accept_new_host_keys: false,
        connect_timeout,
        command_timeout: Duration::from_secs(10),
        jumps: vec![],
    };
    let started = Instant::now();
    let err = Session::connect(&target).unwrap_err();
    let elapsed = started.elapsed();
    assert!(matches!(err, ConnectError::Timeout { .. }), "{err:?}");
    assert!(
        elapsed >= connect_timeout - Duration::from_millis(500),
        "gave up early: {elapsed:?}"
    );
    assert!(
        elapsed < connect_timeout + Duration::from_secs(2),
        "took {elapsed:?}"
    );
    assert!(err.to_string().starts_with(&format!(
        "timed out after 2s waiting for the ssh handshake from 127.0.0.1:{port}; "
    )));
}

#[test]
fn a_server_that_is_not_ssh_fails_the_handshake() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        let _ = stream.write_all(b"HTTP/1.1 400 Bad Request\r\n\r\n");
    });
    let dir = tempfile::tempdir().unwrap();
    let target = Target {
        name: "web".into(),
        address: "127.0.0.1".into(),
        port,
        user: "root".into(),
        identity_files: vec![],
        known_hosts: dir.path().join("known_hosts"),
        accept_new_host_keys: false,
        connect_timeout: Duration::from_secs(5),
        command_timeout: Duration::from_secs(5),
        jumps: vec![],
    };
    let started = Instant::now();
    let err = Session::connect(&target).unwrap_err();
    assert!(matches!(err, ConnectError::Handshake { .. }), "{err:?}");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "took {:?}",
        started.elapsed()
    );
    let message = err.to_string();
    assert!(
        message.starts_with(&format!("ssh handshake with 127.0.0.1:{port} failed: ")),
        "{message}"
    );
    assert!(
        message.ends_with("; check that an ssh server listens there"),
        "{message}"
    );
}

#[test]
fn wrong_key_is_an_authentication_error() {
    let sshd = sshd_or_skip!();
    let mut target = sshd.target();
    let wrong = sshd.path("wrong_key");
    keygen(&wrong, "ed25519", "");
    target.identity_files = vec![wrong.clone()];
    match Session::connect(&target) {
        Err(e @ ConnectError::Auth { .. }) => {
            let ConnectError::Auth {
                ref user,
                ref tried,
            } = e
            else {
                unreachable!()
            };
            assert_eq!(user, "root");
            assert_eq!(tried.last().unwrap(), &wrong.display().to_string());
            assert!(
                e.to_string()
                    .starts_with("authentication failed for user root (tried: "),
                "{e}"
            );
        }
        other => panic!("want Auth, got {other:?}"),
    }

    // A passphrase-protected key is not tried; the message says to use the agent.
    let locked = sshd.path("locked_key");
    keygen(&locked, "ed25519", "secret passphrase");
    fs::write(sshd.path("authorized_keys"), public_key(&locked) + "\n").unwrap();
    target.identity_files = vec![locked];
    let err = Session::connect(&target).unwrap_err();
    assert!(matches!(err, ConnectError::Auth { .. }), "{err:?}");
    let message = err.to_string();
    assert!(
        message.contains("passphrase-protected: load it into ssh-agent"),
        "{message}"
    );
    assert!(!message.contains("secret"), "{message}");
}

#[test]
fn unreadable_known_hosts_is_reported() {
    let sshd = sshd_or_skip!();
    let mut target = sshd.target();
    target.known_hosts = sshd.path("a_directory");
    fs::create_dir(&target.known_hosts).unwrap();
    let err = Session::connect(&target).unwrap_err();
    assert!(matches!(err, ConnectError::KnownHosts { .. }), "{err:?}");
    assert!(
        err.to_string()
            .starts_with("could not read known_hosts file "),
        "{err}"
    );
}

#[test]
fn command_timeout_is_enforced() {
    let sshd = sshd_or_skip!();
    let mut target = sshd.target();
    target.command_timeout = Duration::from_secs(1);
    let mut session = sshd.connect(&target);

    let started = Instant::now();
    let err = session.exec("sleep 30", b"", false).unwrap_err();
    let elapsed = started.elapsed();
    assert!(matches!(err, ExecError::Timeout { .. }), "{err:?}");
    assert!(elapsed < Duration::from_secs(3), "took {elapsed:?}");
    assert_eq!(
        err.to_string(),
        "timed out after 1s running `sleep 30`; raise command_timeout or check why the host is slow"
    );

    // Output that never ends is bounded too.
    let err = session.exec("yes", b"", false).unwrap_err();
    assert!(matches!(err, ExecError::Timeout { .. }), "{err:?}");

    // The session stays usable (with a bound a loaded CI machine cannot miss),
    // and dropping it does not wait for `sleep 30`.
    session.set_command_timeout(Duration::from_secs(30));
    let out = session.exec("echo still here", b"", false).unwrap();
    assert_eq!(text(&out.stdout), "still here\n");
    let started = Instant::now();
    drop(session);
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "drop took {:?}",
        started.elapsed()
    );
}

#[test]
fn sessions_work_from_worker_threads() {
    let sshd = sshd_or_skip!();
    let target = sshd.target();
    let sessions: Vec<Session> = (0..4).map(|_| sshd.connect(&target)).collect();
    let handles: Vec<_> = sessions
        .into_iter()
        .enumerate()
        .map(|(i, mut s)| {
            thread::spawn(move || s.exec(&format!("echo {i}"), b"", false).unwrap().stdout)
        })
        .collect();
    for (i, h) in handles.into_iter().enumerate() {
        assert_eq!(text(&h.join().unwrap()), format!("{i}\n"));
    }
}

/// A throw-away local user, removed (with its sudoers file) on drop.
struct TempUser {
    name: String,
    sudoers: PathBuf,
}

impl TempUser {
    fn create() -> TempUser {
        let name = format!("mrtest{}", std::process::id());
        let status = Command::new("useradd")
            .args(["-M", "-d", "/tmp", "-s", "/bin/sh", "-p", "*", &name])
            .status()
            .expect("run useradd");
        assert!(status.success(), "useradd {name} failed");
        TempUser {
            sudoers: PathBuf::from(format!("/etc/sudoers.d/{name}")),
            name,
        }
    }

    fn allow_passwordless_sudo(&self) {
        let mut file = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o440)
            .open(&self.sudoers)
            .unwrap();
        writeln!(file, "{} ALL=(ALL) NOPASSWD: ALL", self.name).unwrap();
    }
}

impl Drop for TempUser {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.sudoers);
        for _ in 0..20 {
            // Fails while sshd still has a process of the user; retry briefly.
            if Command::new("userdel")
                .arg(&self.name)
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
            {
                return;
            }
            thread::sleep(Duration::from_millis(250));
        }
        eprintln!(
            "WARNING: could not remove test user {}; run: userdel -f {}",
            self.name, self.name
        );
    }
}

#[test]
fn sudo_for_a_non_root_user() {
    let sshd = sshd_or_skip!();
    let missing: Vec<&str> = ["/usr/bin/sudo", "/usr/sbin/useradd", "/usr/sbin/userdel"]
        .into_iter()
        .filter(|p| !Path::new(p).exists())
        .collect();
    if !missing.is_empty() {
        if std::env::var_os("MIGREADY_REQUIRE_SSHD").is_some() {
            panic!("MIGREADY_REQUIRE_SSHD is set but {missing:?} missing; install sudo and passwd");
        }
        eprintln!("\n!!! SKIPPED sudo test: {missing:?} missing; install sudo and passwd\n");
        return;
    }
    let user = TempUser::create();
    let mut target = sshd.target();
    target.user = user.name.clone();

    {
        let mut session = sshd.connect(&target);
        assert!(!session.is_root());
        let uid = text(&session.exec("id -u", b"", false).unwrap().stdout);
        assert_ne!(uid.trim(), "0");
        match session.exec("id -u", b"", true) {
            Err(e @ ExecError::Sudo { .. }) => assert_eq!(
                e.to_string(),
                format!(
                    "sudo requires a password for user {}; configure passwordless sudo (NOPASSWD) or log in as root",
                    user.name
                )
            ),
            other => panic!("want ExecError::Sudo, got {other:?}"),
        }
    }

    user.allow_passwordless_sudo();
    let mut session = sshd.connect(&target);
    assert!(!session.is_root());
    let out = session
        .exec("id -u; echo \"$1\" 'it''s'", b"", true)
        .unwrap();
    assert_eq!(
        text(&out.stdout),
        "0\n its\n",
        "stderr: {}",
        text(&out.stderr)
    );
    let out = session.exec("cat", b"through sudo", true).unwrap();
    assert_eq!(text(&out.stdout), "through sudo");
    let out = session
        .run_script("id -u\necho \"it's a script\"\n")
        .unwrap();
    assert_eq!(
        text(&out.stdout),
        "0\nit's a script\n",
        "stderr: {}",
        text(&out.stderr)
    );
    drop(session);
}

// ---------------------------------------------------------------------------
// Jump hosts (ProxyJump): a jump host J in one network namespace, reachable from
// here, and a host T in another, reachable only from J (veth J <-> T; this side
// has an `unreachable` route to T's subnet, so no packet for it leaves the
// machine). Both run their own sshd with their own host key.

mod jump {
    use super::*;
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicU32, Ordering};

    /// One jump test at a time: they count the process's pump threads.
    static SERIAL: Mutex<()> = Mutex::new(());
    static NEXT: AtomicU32 = AtomicU32::new(0);

    fn run(cmd: &str, args: &[&str]) -> std::process::Output {
        Command::new(cmd).args(args).stdin(Stdio::null()).output().unwrap_or_else(|e| panic!("run {cmd}: {e}"))
    }

    fn must(cmd: &str, args: &[&str]) {
        let out = run(cmd, args);
        assert!(out.status.success(), "{cmd} {} failed: {}", args.join(" "), String::from_utf8_lossy(&out.stderr));
    }

    pub(super) struct JumpNet {
        pub dir: TempDir,
        ns_jump: String,
        ns_target: String,
        veth: String,
        target_net: String,
        /// J's address on our side.
        pub jump: String,
        /// J's address on T's side.
        pub jump_inner: String,
        pub target: String,
        pub client_key: PathBuf,
        _serial: std::sync::MutexGuard<'static, ()>,
    }

    impl Drop for JumpNet {
        fn drop(&mut self) {
            for ns in [&self.ns_jump, &self.ns_target] {
                let out = run("ip", &["netns", "pids", ns]);
                for pid in String::from_utf8_lossy(&out.stdout).split_whitespace().filter_map(|p| p.parse().ok()) {
                    let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGKILL);
                }
                let _ = run("ip", &["netns", "del", ns]);
            }
            let _ = run("ip", &["link", "del", &self.veth]);
            let _ = run("ip", &["route", "del", "unreachable", &self.target_net]);
        }
    }

    fn can_run() -> bool {
        let missing = if !Path::new(SSHD).exists() {
            Some(format!("{SSHD} not found; install openssh-server"))
        } else if !nix::unistd::getuid().is_root() {
            Some("not running as root (network namespaces and sshd need root)".to_string())
        } else if run("ip", &["-V"]).status.code().is_none() {
            Some("`ip` not found; install iproute2".to_string())
        } else {
            None
        };
        common::may_run("jump host test", missing)
    }

    /// Threads of this process named like the transport's pumps.
    pub(super) fn pump_threads() -> usize {
        fs::read_dir("/proc/self/task")
            .unwrap()
            .filter_map(|t| fs::read_to_string(t.ok()?.path().join("comm")).ok())
            .filter(|name| name.trim() == "migready-jump")
            .count()
    }

    impl JumpNet {
        pub(super) fn up() -> Option<JumpNet> {
            if !can_run() {
                return None;
            }
            let serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
            let n = NEXT.fetch_add(1, Ordering::Relaxed);
            let pid = std::process::id();
            let tag = format!("{}{n}", pid % 100_000);
            let k = (pid + n) % 50;
            let (outer, inner) = (format!("198.19.{}", 100 + k), format!("198.19.{}", 150 + k));
            let net = JumpNet {
                dir: tempfile::tempdir().unwrap(),
                ns_jump: format!("mrjump-{tag}-j"),
                ns_target: format!("mrjump-{tag}-t"),
                veth: format!("mrj{tag}"),
                target_net: format!("{inner}.0/24"),
                jump: format!("{outer}.2"),
                jump_inner: format!("{inner}.1"),
                target: format!("{inner}.2"),
                client_key: PathBuf::new(),
                _serial: serial,
            };
            let mut net = net;
            let (j, t) = (net.ns_jump.clone(), net.ns_target.clone());
            must("ip", &["netns", "add", &j]);
            must("ip", &["netns", "add", &t]);
            must("ip", &["link", "add", &net.veth, "type", "veth", "peer", "name", "eth0", "netns", &j]);
            must("ip", &["addr", "add", &format!("{outer}.1/24"), "dev", &net.veth]);
            must("ip", &["link", "set", &net.veth, "up"]);
            must("ip", &["route", "add", "unreachable", &net.target_net]);
            must("ip", &["-n", &j, "addr", "add", &format!("{}/24", net.jump), "dev", "eth0"]);
            must("ip", &["-n", &j, "link", "add", "eth1", "type", "veth", "peer", "name", "eth0", "netns", &t]);
            must("ip", &["-n", &j, "addr", "add", &format!("{}/24", net.jump_inner), "dev", "eth1"]);
            must("ip", &["-n", &t, "addr", "add", &format!("{}/24", net.target), "dev", "eth0"]);
            for (ns, dev) in [(&j, "eth0"), (&j, "eth1"), (&j, "lo"), (&t, "eth0"), (&t, "lo")] {
                must("ip", &["-n", ns, "link", "set", dev, "up"]);
            }
            if !Path::new("/run/sshd").exists() {
                fs::create_dir_all("/run/sshd").unwrap();
            }
            net.client_key = net.path("client_key");
            keygen(&net.client_key, "ed25519", "");
            fs::write(net.path("authorized_keys"), public_key(&net.client_key) + "\n").unwrap();
            net.start_sshd(&j, "jump", &[&net.jump.clone(), &net.jump_inner.clone()]);
            net.start_sshd(&t, "target", &[&net.target.clone()]);
            net.write_known_hosts(true, true);
            Some(net)
        }

        pub(super) fn path(&self, name: &str) -> PathBuf {
            self.dir.path().join(name)
        }

        pub(super) fn target_ns(&self) -> &str {
            &self.ns_target
        }

        /// Kills every process of J's namespace (its sshd and the sessions it serves).
        pub(super) fn kill_jump(&self) {
            let out = run("ip", &["netns", "pids", &self.ns_jump]);
            for pid in String::from_utf8_lossy(&out.stdout).split_whitespace().filter_map(|p| p.parse().ok()) {
                let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGKILL);
            }
        }

        fn start_sshd(&self, ns: &str, name: &str, addresses: &[&str]) {
            let key = self.path(&format!("host_{name}"));
            keygen(&key, "ed25519", "");
            let mut config = String::new();
            for a in addresses {
                config.push_str(&format!("ListenAddress {a}\n"));
            }
            config.push_str(&format!(
                "Port 22\nHostKey {}\nAuthorizedKeysFile {}\nStrictModes no\nPidFile none\nUsePAM no\n\
                 PermitRootLogin prohibit-password\nPasswordAuthentication no\nKbdInteractiveAuthentication no\n\
                 AllowTcpForwarding yes\nLogLevel VERBOSE\n",
                key.display(),
                self.path("authorized_keys").display()
            ));
            let conf = self.path(&format!("sshd_{name}.conf"));
            fs::write(&conf, config).unwrap();
            let log_path = self.path(&format!("sshd_{name}.log"));
            let log = fs::File::create(&log_path).unwrap();
            // Killed with every process of its namespace on drop.
            #[allow(clippy::zombie_processes)]
            Command::new("ip")
                .args(["netns", "exec", ns, SSHD, "-D", "-e", "-f"])
                .arg(&conf)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(log)
                .spawn()
                .expect("spawn sshd");
            let started = Instant::now();
            while started.elapsed() < Duration::from_secs(10) {
                if fs::read_to_string(&log_path).unwrap_or_default().matches("Server listening on").count() >= addresses.len() {
                    return;
                }
                thread::sleep(Duration::from_millis(20));
            }
            panic!("sshd {name} did not listen:\n{}", fs::read_to_string(&log_path).unwrap_or_default());
        }

        pub(super) fn log(&self, name: &str) -> String {
            fs::read_to_string(self.path(&format!("sshd_{name}.log"))).unwrap_or_default()
        }

        pub(super) fn host_line(&self, address: &str, name: &str) -> String {
            format!("{address} {}", public_key(&self.path(&format!("host_{name}"))))
        }

        /// known_hosts with J's key (under both its addresses) and T's, as asked.
        pub(super) fn write_known_hosts(&self, jump: bool, target: bool) {
            let mut text = String::new();
            if jump {
                text += &format!("{}\n{}\n", self.host_line(&self.jump, "jump"), self.host_line(&self.jump_inner, "jump"));
            }
            if target {
                text += &(self.host_line(&self.target, "target") + "\n");
            }
            fs::write(self.path("known_hosts"), text).unwrap();
        }

        pub(super) fn hop(&self, address: &str) -> Hop {
            Hop {
                name: format!("root@{address}"),
                address: address.to_string(),
                port: 22,
                user: "root".into(),
                identity_files: vec![self.client_key.clone()],
                known_hosts: self.path("known_hosts"),
                accept_new_host_keys: false,
            }
        }

        /// T, through J.
        pub(super) fn target(&self) -> Target {
            Target {
                name: "behind-jump".into(),
                address: self.target.clone(),
                port: 22,
                user: "root".into(),
                identity_files: vec![self.client_key.clone()],
                known_hosts: self.path("known_hosts"),
                accept_new_host_keys: false,
                connect_timeout: Duration::from_secs(10),
                command_timeout: Duration::from_secs(60),
                jumps: vec![self.hop(&self.jump)],
            }
        }
    }
}

use jump::{JumpNet, pump_threads};

macro_rules! jump_net_or_skip {
    () => {{
        match JumpNet::up() {
            Some(net) => net,
            None => return,
        }
    }};
}

#[test]
fn through_a_jump_host_commands_run_and_every_key_is_verified() {
    let net = jump_net_or_skip!();
    // Straight to T: no route (refused locally, nothing leaves the machine).
    let mut direct = net.target();
    direct.jumps.clear();
    let err = Session::connect(&direct).unwrap_err();
    assert!(matches!(err, ConnectError::Connect { .. }), "{err:?}");

    let started = Instant::now();
    let mut session = Session::connect(&net.target())
        .unwrap_or_else(|e| panic!("{e}\njump log:\n{}\ntarget log:\n{}", net.log("jump"), net.log("target")));
    eprintln!("connected through the jump host in {:?}", started.elapsed());
    assert!(session.is_root());
    assert_eq!(session.host_key_fingerprint(), ssh_keygen_fingerprint(&net.path("host_target")));
    let jumps = session.jumps();
    assert_eq!(jumps.len(), 1);
    assert_eq!(jumps[0].name, format!("root@{}", net.jump));
    assert_eq!(jumps[0].endpoint, format!("{}:22", net.jump));
    assert_eq!(jumps[0].fingerprint, ssh_keygen_fingerprint(&net.path("host_jump")));
    assert!(!jumps[0].host_key_added);
    assert_eq!(pump_threads(), 1);

    // T sees the connection come from J.
    let out = session.exec("echo $SSH_CONNECTION", b"", false).unwrap();
    assert!(text(&out.stdout).starts_with(&format!("{} ", net.jump_inner)), "{}", text(&out.stdout));
    // Bulk both ways through the pump: 3 MB in, echoed back, and 1 MiB of stderr.
    let input: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
    let out = session.exec("cat; head -c 1048576 /dev/zero >&2", &input, false).unwrap();
    assert_eq!(out.status, 0);
    assert!(out.stdout == input, "stdout differs ({} bytes)", out.stdout.len());
    assert_eq!(out.stderr.len(), 1_048_576);
    let out = session.run_script("echo script-ran\n").unwrap();
    assert_eq!(text(&out.stdout), "script-ran\n");

    // Dropping the session ends the pump and the jump host's session.
    drop(session);
    assert_eq!(pump_threads(), 0);
    let started = Instant::now();
    while !net.log("jump").contains("Disconnected from user root") && started.elapsed() < Duration::from_secs(5) {
        thread::sleep(Duration::from_millis(50));
    }
    assert!(net.log("jump").contains("Disconnected from user root"), "{}", net.log("jump"));
}

#[test]
fn two_jump_hosts_in_a_row() {
    let net = jump_net_or_skip!();
    // J, then J again by its inner address (J connects to itself), then T.
    let mut target = net.target();
    target.jumps = vec![net.hop(&net.jump), net.hop(&net.jump_inner)];
    let mut session = Session::connect(&target).unwrap_or_else(|e| panic!("{e}\njump log:\n{}", net.log("jump")));
    let names: Vec<&str> = session.jumps().iter().map(|j| j.endpoint.as_str()).collect();
    assert_eq!(names, [format!("{}:22", net.jump), format!("{}:22", net.jump_inner)]);
    assert_eq!(pump_threads(), 2);
    let out = session.exec("head -c 2000000 /dev/zero | wc -c", b"", true).unwrap();
    assert_eq!(text(&out.stdout).trim(), "2000000");
    drop(session);
    assert_eq!(pump_threads(), 0);
    assert_eq!(net.log("jump").matches("Accepted publickey for root").count(), 2);
}

#[test]
fn a_dead_or_refusing_jump_host_is_named() {
    let net = jump_net_or_skip!();
    let mut target = net.target();
    target.jumps[0].port = 2222;
    let err = Session::connect(&target).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "jump host root@{0}: connection refused at {0}:2222; check that sshd is running and listening on that port",
            net.jump
        )
    );
    // Nothing answers at that address: bounded by connect_timeout, the hop named.
    let dead = net.jump.rsplit_once('.').unwrap().0.to_string() + ".99";
    let mut target = net.target();
    target.jumps = vec![net.hop(&dead)];
    target.connect_timeout = Duration::from_secs(2);
    let started = Instant::now();
    let err = Session::connect(&target).unwrap_err();
    let elapsed = started.elapsed();
    assert!(elapsed < Duration::from_secs(4), "took {elapsed:?}");
    let message = err.to_string();
    assert!(message.starts_with(&format!("jump host root@{dead}: ")), "{message}");
    assert!(message.contains(&format!("{dead}:22")), "{message}");
    assert_eq!(pump_threads(), 0);
}

#[test]
fn a_changed_jump_host_key_is_refused_naming_the_hop() {
    let net = jump_net_or_skip!();
    // J's address filed with T's key: J now "offers a different key".
    fs::write(net.path("known_hosts"), format!("{}\n{}\n", net.host_line(&net.jump, "target"), net.host_line(&net.target, "target"))).unwrap();
    let err = Session::connect(&net.target()).unwrap_err();
    let message = err.to_string();
    assert!(
        message.starts_with(&format!("jump host root@{0}: HOST KEY CHANGED for {0}:22 ({1} line 1;", net.jump, net.path("known_hosts").display())),
        "{message}"
    );
    assert!(message.contains(&ssh_keygen_fingerprint(&net.path("host_jump"))), "{message}");
    // Nothing was sent through it: T saw no connection, J no login.
    assert!(!net.log("target").contains("Connection from"), "{}", net.log("target"));
    assert!(!net.log("jump").contains("Accepted publickey"), "{}", net.log("jump"));
    // accept_new_host_keys does not accept a changed key either.
    let mut target = net.target();
    target.jumps[0].accept_new_host_keys = true;
    assert!(Session::connect(&target).unwrap_err().to_string().contains("HOST KEY CHANGED"));
}

#[test]
fn unknown_keys_behind_and_at_a_jump_host() {
    let net = jump_net_or_skip!();
    // T unknown: refused, said to be behind the jump host.
    net.write_known_hosts(true, false);
    let message = Session::connect(&net.target()).unwrap_err().to_string();
    assert!(
        message.starts_with(&format!("through jump host root@{}: host key for {}:22 is not in ", net.jump, net.target)),
        "{message}"
    );
    // J unknown, trust on first use for J only: J's key is added, T's checked.
    net.write_known_hosts(false, true);
    let mut target = net.target();
    target.jumps[0].accept_new_host_keys = true;
    let session = Session::connect(&target).unwrap();
    assert!(session.jumps()[0].host_key_added);
    assert!(!session.host_key_added());
    drop(session);
    let known = fs::read_to_string(net.path("known_hosts")).unwrap();
    assert_eq!(known.lines().filter(|l| l.starts_with(&format!("{} ", net.jump))).count(), 1, "{known}");
    assert!(Session::connect(&net.target()).is_ok(), "the added key is known now");
}

#[test]
fn a_jump_host_that_cannot_reach_the_next_one_says_so() {
    let net = jump_net_or_skip!();
    let mut target = net.target();
    target.port = 2222;
    let message = Session::connect(&target).unwrap_err().to_string();
    assert!(
        message.starts_with(&format!("jump host root@{} could not open a connection to {}:2222: ", net.jump, net.target)),
        "{message}"
    );
    assert_eq!(pump_threads(), 0);
}

#[test]
fn a_silent_host_behind_a_jump_host_is_bounded_by_connect_timeout() {
    let net = jump_net_or_skip!();
    if !Path::new("/usr/bin/python3").exists() {
        assert!(std::env::var_os("MIGREADY_REQUIRE_SSHD").is_none(), "MIGREADY_REQUIRE_SSHD is set but /usr/bin/python3 is missing");
        eprintln!("!!! SKIPPED the silent host behind a jump host: no /usr/bin/python3");
        return;
    }
    // In T: accepts TCP on 2222 and never says a word (ends by itself after 30 s).
    let listener = format!(
        "import socket,time\ns=socket.socket()\ns.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1)\ns.bind(('{}',2222))\ns.listen()\nprint('ready',flush=True)\nc=s.accept()\ntime.sleep(30)\n",
        net.target
    );
    let mut child = Command::new("ip")
        .args(["netns", "exec", net.target_ns(), "/usr/bin/python3", "-c", &listener])
        .stdout(Stdio::piped())
        .stdin(Stdio::null())
        .spawn()
        .unwrap();
    let mut ready = [0u8; 6];
    std::io::Read::read_exact(child.stdout.as_mut().unwrap(), &mut ready).unwrap();
    let mut target = net.target();
    target.port = 2222;
    target.connect_timeout = Duration::from_secs(2);
    let started = Instant::now();
    let err = Session::connect(&target).unwrap_err();
    let elapsed = started.elapsed();
    let _ = child.kill();
    let _ = child.wait();
    assert!(elapsed >= Duration::from_millis(1500) && elapsed < Duration::from_secs(4), "took {elapsed:?}");
    assert!(
        err.to_string().starts_with(&format!(
            "through jump host root@{}: timed out after 2s waiting for the ssh handshake from {}:2222; ",
            net.jump, net.target
        )),
        "{err}"
    );
    assert_eq!(pump_threads(), 0);
}

#[test]
fn a_jump_host_dying_mid_session_fails_the_next_command_promptly() {
    let net = jump_net_or_skip!();
    let mut target = net.target();
    target.command_timeout = Duration::from_secs(30);
    let mut session = Session::connect(&target).unwrap();
    assert!(session.exec("true", b"", false).unwrap().success());
    net.kill_jump();
    let started = Instant::now();
    let err = session.exec("sleep 20", b"", false).unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(5), "took {:?}: {err}", started.elapsed());
    assert!(matches!(err, ExecError::Channel(_)), "{err:?}");
    drop(session);
    assert_eq!(pump_threads(), 0);
}
