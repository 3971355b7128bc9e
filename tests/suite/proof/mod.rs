//! The proof campaign: capstan's promises tried by the hundred with the real evaluator binary,
//! run as Lambda runs it (a Runtime API of the test's own), against the emulator through the
//! fault-injecting proxy. See docs/testing.md.
//!
//! Run with `scripts/with-emulator.sh cargo test -p capstan-tests --test suite proof::`.

mod duplicated;
mod killed;

/// A whole number from the environment variable `name`, or `default`.
fn setting(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().map_or(default, |value| {
        value
            .parse()
            .unwrap_or_else(|_| panic!("{name}={value} is not a whole number"))
    })
}
