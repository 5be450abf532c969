use clap::{Parser, Subcommand, ValueEnum};
use migready::report::escape::for_terminal;
use migready::report::{print_table, Evidence, TableOptions};
use migready::{audit, checks, exit, inventory};
use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::time::Instant;

/// Make Nova/libvirt compute hosts ready for live block migration
/// (`nova live-migration --block-migrate` on local storage).
#[derive(Parser)]
#[command(name = "migready", version, after_help = "\
Exit codes:
  0  nothing failed
  1  a check failed or a host could not be reached
  2  usage or inventory error (nothing was audited)")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Read-only preflight audit of every host in the inventory.
    ///
    /// Connects to each host over SSH (host keys verified against known_hosts),
    /// gathers its facts in one round trip and runs every check. Nothing on the
    /// hosts is changed.
    Doctor {
        /// Inventory file (TOML; see inventory.example.toml).
        #[arg(short, long, env = "MIGREADY_INVENTORY")]
        inventory: PathBuf,
        /// Output format.
        #[arg(long, value_enum, default_value_t = Format::Table)]
        format: Format,
        /// Hosts audited at once.
        #[arg(long, default_value_t = 32, value_parser = clap::value_parser!(u16).range(1..=1024))]
        parallel: u16,
        /// Show the evidence of every check, not only of failures and warnings.
        #[arg(short, long)]
        verbose: bool,
        /// Reachability probes from each host to its peers: every ordered pair,
        /// the ring (each host to the next), or none.
        #[arg(long, value_enum, default_value_t = migready::mesh::Pairs::Full)]
        mesh: migready::mesh::Pairs,
        /// Also write a JUnit XML report (one test case per check).
        #[arg(long, value_name = "FILE")]
        junit: Option<PathBuf>,
        /// The clouds.yaml cloud the Nova-side checks ask (else OS_CLOUD, the
        /// inventory's [nova] cloud, or the OS_* variables; none: those checks skip).
        #[arg(long, value_name = "NAME")]
        os_cloud: Option<String>,
    },
    /// Remediate what doctor finds wrong, on each host's real daemon mode.
    ///
    /// Audits, computes a plan per host (file diffs, systemctl, iptables/ip6tables
    /// and firewall-cmd commands; firewalld rich rules go to the runtime and the
    /// permanent configuration, without --reload), shows it, and with --yes (or a
    /// yes on the terminal) applies it as one transaction per host, run by the
    /// host itself (migready-fix.service, which also locks the host): atomic file
    /// writes with backups that refuse to overwrite a file changed since it was
    /// read, then the libvirt daemon must come back, or everything is rolled back;
    /// also when the connection or migready dies meanwhile (the host finishes on its
    /// own; the next doctor says how it ended). Audits again and prints each check
    /// before -> after. A second run changes nothing.
    Fix {
        /// Inventory file (TOML; see inventory.example.toml).
        #[arg(short, long, env = "MIGREADY_INVENTORY")]
        inventory: PathBuf,
        /// Show the plan (diffs and commands) and change nothing.
        #[arg(long, conflicts_with = "yes")]
        dry_run: bool,
        /// Apply without asking (required when stdin is not a terminal).
        #[arg(short, long)]
        yes: bool,
        /// Hosts handled at once.
        #[arg(long, default_value_t = 32, value_parser = clap::value_parser!(u16).range(1..=1024))]
        parallel: u16,
        /// Output: the plan, the actions and before -> after for people, or one JSON
        /// document (the plan, what was applied, rollbacks and before -> after per
        /// host and pair; needs --yes or --dry-run).
        #[arg(long, value_enum, default_value_t = Format::Table)]
        format: Format,
        /// Also write a JUnit XML report of the checks after the run.
        #[arg(long, value_name = "FILE")]
        junit: Option<PathBuf>,
        /// Reachability probes before and after (pair checks in before -> after).
        #[arg(long, value_enum, default_value_t = migready::mesh::Pairs::Full)]
        mesh: migready::mesh::Pairs,
        /// The clouds.yaml cloud the Nova-side checks ask before and after (else
        /// OS_CLOUD, the inventory's [nova] cloud, or the OS_* variables).
        #[arg(long, value_name = "NAME")]
        os_cloud: Option<String>,
    },
    /// Reachability mesh and a test live block migration between hosts.
    ///
    /// Audits like doctor, probes from each host to its peers (name resolution,
    /// qemu+tcp or qemu+tls, migration ports), then per pair runs the seed's prechecks and
    /// live-migrates a throwaway guest (migready-test-*) laid out like a Nova
    /// instance, with Nova's flags, verifies it on both hosts and removes it
    /// from both hosts whatever happens (also on timeout and Ctrl-C).
    Validate(migready::validate::cli::Args),
    /// The certificate authority for `[policy] transport = "tls"`.
    Ca {
        #[command(subcommand)]
        command: CaCommand,
    },
    /// List the checks with their IDs.
    Checks,
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    Completions {
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff), generated from these definitions; with --dir,
    /// write migready.1 and one page per subcommand (migready-fix.1, ...) there.
    Man {
        #[arg(long)]
        dir: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
enum CaCommand {
    /// Make a CA: an ECDSA P-256 key (cakey.pem, mode 0600, in a directory of mode
    /// 0700) and a self-signed CA certificate valid ten years (cacert.pem).
    ///
    /// The key stays on this machine: migready never sends it to a host. Refuses
    /// when either file exists. Prints the two paths.
    Init {
        /// Where to write them (default ~/.config/migready/ca).
        #[arg(long)]
        dir: Option<PathBuf>,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum Format {
    /// A table for people (colour on a terminal).
    Table,
    /// One JSON document: {"command","exit_code","hosts":[...],"pairs":[...],"summary":{...},"elapsed_ms"}
    /// (fix adds "fix": plans, actions, rollbacks, before -> after).
    Json,
}

fn main() {
    let cli = Cli::parse();
    let code = match cli.command {
        Command::Ca { command: CaCommand::Init { dir } } => {
            match dir.or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config/migready/ca"))) {
                None => {
                    eprintln!("error: no --dir and no HOME to put the CA under");
                    exit::USAGE
                }
                Some(dir) => ca_init(&dir),
            }
        }
        Command::Checks => {
            for c in checks::ALL {
                println!("{:<22} {}", c.id, c.summary);
            }
            for (id, summary) in migready::nova::checks::CHECKS {
                println!("{id:<22} {summary} (where a cloud is configured)");
            }
            for (id, summary) in migready::mesh::CHECKS.iter().chain(migready::validate::CHECKS) {
                println!("{id:<22} {summary} (per pair of hosts)");
            }
            for (id, summary) in migready::nova::live::CHECKS {
                println!("{id:<22} {summary} (per pair of hosts)");
            }
            exit::OK
        }
        Command::Fix { format: Format::Json, dry_run: false, yes: false, .. } => {
            eprintln!("error: --format json needs --yes or --dry-run (there is no one to ask)");
            exit::USAGE
        }
        Command::Fix { inventory, dry_run, yes, parallel, format, junit, mesh, os_cloud } => match inventory::load(&inventory, &migready::check_ids()) {
            Ok(inv) => {
                let cloud = migready::nova::cloud::CloudRef::resolve(os_cloud.as_deref(), Some(&inv.nova));
                migready::fix::run::run(
                    &inv,
                    &migready::fix::run::Options { dry_run, yes, parallel: parallel as usize, mesh, json: matches!(format, Format::Json), junit, cloud },
                )
            }
            Err(e) => {
                eprintln!("error: {}", for_terminal(&e.to_string()));
                exit::USAGE
            }
        },
        Command::Completions { shell } => {
            // Into memory first: clap_complete panics on a write error (a closed pipe).
            let mut buf = Vec::new();
            clap_complete::generate(shell, &mut <Cli as clap::CommandFactory>::command(), "migready", &mut buf);
            let _ = std::io::stdout().write_all(&buf);
            exit::OK
        }
        Command::Man { dir: Some(dir) } => match clap_mangen::generate_to(<Cli as clap::CommandFactory>::command(), &dir) {
            Ok(()) => exit::OK,
            Err(e) => {
                eprintln!("error: writing man pages to {}: {e}", dir.display());
                exit::FAILED
            }
        },
        Command::Man { dir: None } => {
            let mut buf = Vec::new();
            match clap_mangen::Man::new(<Cli as clap::CommandFactory>::command()).render(&mut buf) {
                Ok(()) => {
                    let _ = std::io::stdout().write_all(&buf);
                    exit::OK
                }
                Err(e) => {
                    eprintln!("error: {e}");
                    exit::FAILED
                }
            }
        }
        Command::Doctor { inventory, format, parallel, verbose, mesh, junit, os_cloud } => doctor(&inventory, format, parallel as usize, verbose, mesh, junit.as_deref(), os_cloud.as_deref()),
        Command::Validate(args) => migready::validate::cli::main(args),
    };
    std::process::exit(code);
}

/// `migready ca init`: the paths on stdout, an error on stderr (exit 1).
fn ca_init(dir: &std::path::Path) -> i32 {
    match migready::ca::init(dir) {
        Ok((cert, key)) => {
            println!("CA certificate: {}", for_terminal(&cert.display().to_string()));
            println!("CA key (mode 0600, keep it here): {}", for_terminal(&key.display().to_string()));
            exit::OK
        }
        Err(e) => {
            eprintln!("error: {}", for_terminal(&e));
            exit::FAILED
        }
    }
}

fn doctor(path: &std::path::Path, format: Format, parallel: usize, verbose: bool, mesh: migready::mesh::Pairs, junit: Option<&std::path::Path>, os_cloud: Option<&str>) -> i32 {
    let inv = match inventory::load(path, &migready::check_ids()) {
        Ok(inv) => inv,
        Err(e) => {
            eprintln!("error: {}", for_terminal(&e.to_string()));
            return exit::USAGE;
        }
    };
    let start = Instant::now();
    let total = inv.hosts.len();
    let stderr_tty = std::io::stderr().is_terminal();
    let progress = |done: usize, failed: usize| {
        if stderr_tty && matches!(format, Format::Table) && total > 3 {
            let failed = if failed > 0 { format!(", {failed} failed") } else { String::new() };
            eprint!("\r\x1b[2Kgathering facts: {done}/{total} hosts{failed}");
            let _ = std::io::stderr().flush();
        }
    };
    let keep = audit::Keep { sessions: mesh != migready::mesh::Pairs::None, texts: false };
    let gathered = audit::gather_all_counted(&inv, parallel, keep, progress);
    if stderr_tty && matches!(format, Format::Table) && total > 3 {
        eprint!("\r\x1b[2K");
    }
    let report = audit::evaluate(&inv, &gathered, start.elapsed());
    let pairs = migready::mesh::run(&inv, &gathered, mesh, parallel);
    let report = migready::report::Report::with_pairs(report.hosts, pairs, start.elapsed().as_millis() as u64);
    let cloud = migready::nova::cloud::CloudRef::resolve(os_cloud, Some(&inv.nova));
    let (report, _) = migready::nova::audit(&inv, &gathered, report, cloud.as_ref());
    let code = if report.failed() { exit::FAILED } else { exit::OK };
    if let Some(path) = junit
        && let Err(e) = std::fs::write(path, migready::report::junit::write(&report, "migready doctor"))
    {
        eprintln!("error: cannot write {}: {}", for_terminal(&path.display().to_string()), for_terminal(&e.to_string()));
    }
    let mut out = std::io::stdout().lock();
    let written = match format {
        Format::Json => writeln!(out, "{}", report.to_json_as("doctor", code)),
        Format::Table => {
            let tty = std::io::stdout().is_terminal();
            let opts = TableOptions {
                color: tty && std::env::var_os("NO_COLOR").is_none(),
                evidence: if verbose { Evidence::All } else { Evidence::Failures },
                width: None,
            };
            print_table(&mut out, &report, &opts)
        }
    };
    if let Err(e) = written
        && e.kind() != std::io::ErrorKind::BrokenPipe
    {
        eprintln!("error: cannot write the report: {}", for_terminal(&e.to_string()));
    }
    if report.failed() { exit::FAILED } else { exit::OK }
}
