//! Replays metric traces through capstan's real decision path with a simulated fleet, without
//! AWS, and compares the result with models of AWS target tracking, step scaling and predictive
//! scaling, and of the Kubernetes HPA. A
//! [`backtest`] replays policies over a resource's real CloudWatch history, read by the caller.
//!
//! The runner's ports are implemented in memory ([`ports`]): a metric source serving the
//! trace (or metrics a [`load::LoadModel`] derives from its `demand`), the simulated fleets
//! ([`fleet::Fleet`], whose scale-outs serve only after a warm-up) and a state store. Each
//! simulated minute runs one real evaluation pass, `capstan_runner::evaluate`, on a tiny
//! executor (`futures_executor::block_on`; the ports never wait).
//!
//! ```no_run
//! use capstan_sim::scenario::Scenario;
//! let scenario = Scenario::load("scenarios/step-change".as_ref(), None)?;
//! let settings = scenario.settings(None);
//! for run in scenario.run(&settings, || ()) {
//!     println!("{}", capstan_sim::output::summary_line(&scenario.summary(&run)));
//! }
//! # Ok::<(), capstan_sim::scenario::ScenarioError>(())
//! ```

pub mod backtest;
pub mod baseline;
pub mod compare;
pub mod fleet;
pub mod generate;
pub mod load;
pub mod output;
pub mod ports;
pub mod scenario;
pub mod simulate;
pub mod summary;
pub mod trace;

/// A progress bar of `len` steps on stderr, hidden when stderr is not a terminal.
pub fn progress_bar(len: u64, label: &str) -> indicatif::ProgressBar {
    use std::io::IsTerminal;
    if !std::io::stderr().is_terminal() {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new(len);
    if let Ok(style) =
        indicatif::ProgressStyle::with_template("{msg} [{bar:40}] {pos}/{len} minutes ({eta})")
    {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_message(label.to_owned());
    bar
}
