//! How large a policy set and its files may be. Every reader refuses input past these with an
//! error naming the file, never by running out of memory, time or stack: the set is read from
//! git by `capstan validate`, by the functions' build and, with `CAPSTAN_POLICY_DIR`, at a cold
//! start. Each limit is far above any real policy (the repository's largest file is under 2 KiB,
//! about 150 YAML nodes, nested 6 deep) and below what would hurt.

use crate::report::Diagnostic;

/// The largest policy file, in bytes: 1 MiB. Checked before the file is read.
pub const MAX_FILE_BYTES: u64 = 1024 * 1024;

/// The most YAML nodes (values, lists and mappings) one file may hold: 10,000. An alias counts
/// its anchor's nodes again at each use, so an alias bomb ("billion laughs") stops here.
pub const MAX_YAML_NODES: usize = 10_000;

/// The deepest nesting of lists and mappings in one file: 32.
pub const MAX_YAML_DEPTH: usize = 32;

/// The longest duration a policy may name (a cooldown, a window, a schedule's length, ...), in
/// seconds: 3650 days, 10 years. Longer means nothing to a scaling policy, and the engine adds
/// durations to times: far past this, that overflows chrono's calendar (a schedule lasting
/// `9999999999999d` made every decision on its policy panic).
pub const MAX_DURATION_SECS: u64 = 3650 * 86_400;

/// The most files in one set: 10,000. A set of 10,000 validates in about 4 seconds (debug
/// build) and 190 MB; the fan-out was measured at 5,000 policies.
pub const MAX_FILES: usize = 10_000;

/// The problem of a file of `bytes` bytes, past [`MAX_FILE_BYTES`].
pub(crate) fn file_too_large(file: impl Into<String>, bytes: u64) -> Diagnostic {
    Diagnostic::whole_file(
        file,
        format!("{bytes} bytes: a policy file may hold at most {MAX_FILE_BYTES} bytes (1 MiB)"),
    )
}
