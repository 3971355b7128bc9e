//! The `capstan` command run as a user runs it, one module per subcommand, in one test binary.
//! `plan`, `backtest`, `history` and `alarms diff` need the emulator (`scripts/with-emulator.sh`, see docs/testing.md).

mod alarms_diff;
mod backtest;
mod history;
mod plan;
mod schema;
mod simulate;
mod validate;
