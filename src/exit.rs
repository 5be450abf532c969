//! Exit codes, in one place. Documented in README.md and `migready --help`.

/// Nothing failed.
pub const OK: i32 = 0;
/// At least one check failed or a host could not be reached.
pub const FAILED: i32 = 1;
/// Usage or inventory error: nothing was audited.
pub const USAGE: i32 = 2;
