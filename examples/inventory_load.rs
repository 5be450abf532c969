//! Times loading inventories: `migready::inventory::load`, the same call
//! `migready doctor`, `fix` and `validate` start with, and nothing else (no host
//! is contacted). Used by `bench/inventory.sh`.
//!
//! ```sh
//! cargo run --release --example inventory_load -- [--reps N] FILE...
//! ```
//!
//! Prints, per file: its hosts, its size, and the fastest and median of N loads.

use std::path::Path;
use std::time::{Duration, Instant};

fn main() {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let mut reps = 3usize;
    if args.first().map(String::as_str) == Some("--reps") {
        reps = args
            .get(1)
            .and_then(|n| n.parse().ok())
            .filter(|n| *n > 0)
            .unwrap_or_else(|| usage());
        args.drain(..2);
    }
    if args.is_empty() {
        usage();
    }
    let ids = migready::check_ids();
    println!(
        "{:>8} {:>10} {:>10} {:>10}",
        "hosts", "bytes", "min (s)", "median (s)"
    );
    for file in &args {
        let path = Path::new(file);
        let bytes = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
        let mut times: Vec<Duration> = Vec::with_capacity(reps);
        let mut hosts = 0;
        for _ in 0..reps {
            let start = Instant::now();
            let inventory = migready::inventory::load(path, &ids).unwrap_or_else(|e| {
                eprintln!("error: {e}");
                std::process::exit(2)
            });
            times.push(start.elapsed());
            hosts = inventory.hosts.len();
        }
        times.sort();
        println!(
            "{hosts:>8} {bytes:>10} {:>10.3} {:>10.3}",
            times[0].as_secs_f64(),
            times[times.len() / 2].as_secs_f64()
        );
    }
}

fn usage() -> ! {
    eprintln!("usage: inventory_load [--reps N] FILE...");
    std::process::exit(2)
}
