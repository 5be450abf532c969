//! The `migready validate` command line and its output.

use super::{Migrations, Options};
use crate::mesh::Pairs;
use crate::report::escape::for_terminal;
use crate::report::{Format, Output};
use crate::{exit, inventory};
use std::io::IsTerminal;
use std::path::PathBuf;
use std::time::Duration;

/// Arguments of `migready validate`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Inventory file: migready's TOML (see inventory.example.toml), or an
    /// Ansible inventory, INI (kolla-ansible's multinode) or YAML.
    #[arg(short, long, env = "MIGREADY_INVENTORY")]
    pub inventory: PathBuf,
    /// Only the hosts this Ansible-style pattern selects: a group or host name,
    /// `all`, `*`/`?` globs, `a:b` or `a,b` (union), `&x` (and in x), `!x` (not
    /// in x). Ring and pairs are taken among them.
    #[arg(short, long, value_name = "PATTERN")]
    pub limit: Option<String>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
    /// Which test migrations: `ring` (each host sends once and receives once,
    /// in inventory order) or `all` (every ordered pair).
    #[arg(long, value_enum, default_value_t = PairsArg::Ring, conflicts_with = "pair")]
    pub pairs: PairsArg,
    /// Migrate only from A to B (inventory names); repeatable.
    #[arg(long, value_name = "A:B", value_parser = super::parse_pair)]
    pub pair: Vec<(String, String)>,
    /// Reachability probes between hosts: every ordered pair, the ring, or none.
    #[arg(long, value_enum, default_value_t = Pairs::Full)]
    pub mesh: Pairs,
    /// Abort a test migration that takes longer (seconds).
    #[arg(long, default_value_t = 120, value_parser = clap::value_parser!(u64).range(1..=86400))]
    pub timeout: u64,
    /// Hosts reached at once.
    #[arg(long, default_value_t = 32, value_parser = clap::value_parser!(u16).range(1..=1024))]
    pub parallel: u16,
    /// Also write a JUnit XML report (one test case per check and migration).
    #[arg(long, value_name = "FILE")]
    pub junit: Option<PathBuf>,
    /// Show the evidence of every check, not only of failures and warnings.
    #[arg(short, long)]
    pub verbose: bool,
    /// Also run Nova's own live block migration per pair: boot a throwaway server
    /// (migready-test-*) on the source through the API, os-migrateLive it with
    /// block migration to the destination, verify, delete (whatever happens).
    #[arg(long)]
    pub nova: bool,
    /// The clouds.yaml cloud to use (else OS_CLOUD, the inventory's [nova] cloud,
    /// or the OS_* variables).
    #[arg(long, value_name = "NAME")]
    pub os_cloud: Option<String>,
}

#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub enum PairsArg {
    Ring,
    All,
}

/// Run validate; the process exit code.
pub fn main(args: Args) -> i32 {
    let inv = match inventory::load_limited(&args.inventory, &crate::check_ids(), args.limit.as_deref()) {
        Ok(inv) => inv,
        Err(e) => {
            eprintln!("error: {}", for_terminal(&e));
            return exit::USAGE;
        }
    };
    let migrations = if args.pair.is_empty() {
        match args.pairs {
            PairsArg::Ring => Migrations::Ring,
            PairsArg::All => Migrations::All,
        }
    } else {
        Migrations::These(args.pair.clone())
    };
    if let Err(e) = super::migration_pairs(&inv, &migrations) {
        eprintln!("error: {}", for_terminal(&e));
        return exit::USAGE;
    }
    super::migrate::install_signal_handlers();
    let table = matches!(args.format, Format::Table);
    let opts = Options {
        migrations,
        mesh: args.mesh,
        parallel: args.parallel as usize,
        timeout: Duration::from_secs(args.timeout),
        progress: table && std::io::stderr().is_terminal(),
        cloud: crate::nova::cloud::CloudRef::resolve(args.os_cloud.as_deref(), Some(&inv.nova)),
        nova: args.nova,
        nova_image: inv.nova.image.clone(),
    };
    let report = super::run(&inv, &opts);
    crate::report::emit(&report, "validate", &Output { format: args.format, verbose: args.verbose, junit: args.junit })
}
