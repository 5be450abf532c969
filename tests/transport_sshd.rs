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
            identity_file: Some(self.client_key.clone()),
            known_hosts,
            accept_new_host_keys: false,
            connect_timeout: Duration::from_secs(10),
            command_timeout: Duration::from_secs(60),
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
        identity_file: None,
        known_hosts: dir.path().join("known_hosts"),
        accept_new_host_keys: false,
        connect_timeout: Duration::from_secs(10),
        command_timeout: Duration::from_secs(10),
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
        identity_file: None,
        known_hosts: dir.path().join("known_hosts"),
        accept_new_host_keys: false,
        connect_timeout,
        command_timeout: Duration::from_secs(10),
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
        identity_file: None,
        known_hosts: dir.path().join("known_hosts"),
        accept_new_host_keys: false,
        connect_timeout: Duration::from_secs(5),
        command_timeout: Duration::from_secs(5),
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
    target.identity_file = Some(wrong.clone());
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
    target.identity_file = Some(locked);
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
