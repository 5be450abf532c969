use clap::{Parser, Subcommand};
use migready::report::escape::for_terminal;
use migready::report::{Format, Output};
use migready::{checks, doctor, exit, inventory};
use std::io::Write;
use std::path::PathBuf;

/// Make Nova/libvirt compute hosts ready for live block migration
/// (`nova live-migration --block-migrate` on local storage).
#[derive(Parser)]
#[command(name = "migready", version, after_help = "\
Exit codes (doctor, fix, validate):
  0  nothing failed
  1  a check failed or a host could not be reached (fix: or a change was not applied)
  2  usage or inventory error (nothing was audited)

--format json: one document, schema/report.schema.json (README: Output for people and for pipelines).")]
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
    /// hosts is changed, but for Nova's shared-storage test (storage.shared-instances):
    /// an empty file in each instances path, removed in the same run.
    Doctor {
        /// Inventory file: migready's TOML (see inventory.example.toml), or an
        /// Ansible inventory, INI (kolla-ansible's multinode) or YAML.
        #[arg(short, long, env = "MIGREADY_INVENTORY")]
        inventory: PathBuf,
        /// Only the hosts this Ansible-style pattern selects: a group or host name,
        /// `all`, `*`/`?` globs, `a:b` or `a,b` (union), `&x` (and in x), `!x` (not
        /// in x). The other hosts are not peers either.
        #[arg(short, long, value_name = "PATTERN")]
        limit: Option<String>,
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
    /// Audits, computes a plan per host (file diffs, systemctl, iptables/ip6tables,
    /// nft and firewall-cmd commands; firewalld rich rules go to the runtime and the
    /// permanent configuration, without --reload), shows it, and with --yes (or a
    /// yes on the terminal) applies it as one transaction per host, run by the
    /// host itself (migready-fix-RUN.service, which also locks the host): atomic file
    /// writes with backups that refuse to overwrite a file changed since it was
    /// read, then the libvirt daemon must come back, or everything is rolled back
    /// (nftables rules deleted by the handle nft gave them); also when the
    /// connection or migready dies meanwhile (the host finishes on its own; the next
    /// doctor says how it ended). Audits again and prints each check before -> after.
    /// A second run changes nothing. Under transport "tls" it also installs each
    /// host's certificates, issued from the inventory's [tls] CA (keys never shown),
    /// and starts libvirt's TLS listener.
    Fix {
        /// Inventory file: migready's TOML (see inventory.example.toml), or an
        /// Ansible inventory, INI (kolla-ansible's multinode) or YAML.
        #[arg(short, long, env = "MIGREADY_INVENTORY")]
        inventory: PathBuf,
        /// Only the hosts this Ansible-style pattern selects: a group or host name,
        /// `all`, `*`/`?` globs, `a:b` or `a,b` (union), `&x` (and in x), `!x` (not
        /// in x). The other hosts are not peers either.
        #[arg(short, long, value_name = "PATTERN")]
        limit: Option<String>,
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
                println!("{:<24} {}", c.id, c.summary);
            }
            for (id, summary) in migready::nova::checks::CHECKS {
                println!("{id:<24} {summary} (where a cloud is configured)");
            }
            for (id, summary) in migready::mesh::CHECKS.iter().chain(migready::validate::CHECKS) {
                println!("{id:<24} {summary} (per pair of hosts)");
            }
            for (id, summary) in migready::nova::live::CHECKS {
                println!("{id:<24} {summary} (per pair of hosts)");
            }
            exit::OK
        }
        Command::Fix { format: Format::Json, dry_run: false, yes: false, .. } => {
            eprintln!("error: --format json needs --yes or --dry-run (there is no one to ask)");
            exit::USAGE
        }
        Command::Fix { inventory, limit, dry_run, yes, parallel, format, junit, mesh, os_cloud } => match inventory::load_limited(&inventory, &migready::check_ids(), limit.as_deref()) {
            Ok(inv) => {
                let cloud = migready::nova::cloud::CloudRef::resolve(os_cloud.as_deref(), Some(&inv.nova));
                migready::fix::run::run(
                    &inv,
                    &migready::fix::run::Options { dry_run, yes, parallel: parallel as usize, mesh, json: matches!(format, Format::Json), junit, cloud },
                )
            }
            Err(e) => {
                eprintln!("error: {}", for_terminal(&e));
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
        Command::Doctor { inventory, limit, format, parallel, verbose, mesh, junit, os_cloud } => {
            doctor::main(&inventory, &doctor::Options { output: Output { format, verbose, junit }, parallel: parallel as usize, mesh, os_cloud, limit })
        }
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
