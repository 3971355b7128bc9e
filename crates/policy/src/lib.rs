//! capstan's policy language: YAML files parsed with positions kept, validated as a whole set,
//! and turned into the typed [`model::Policy`] values the engine uses.
//!
//! ```
//! use capstan_policy::{PolicySet, Source};
//!
//! let text = "
//! version: 1
//! name: web
//! target: { autoscaling_group: { name: web-asg } }
//! capacity: { min: 2, max: 20 }
//! ";
//! let web = Source { path: "web.yaml".into(), text: text.into() };
//! let set = PolicySet::from_sources(vec![web])?;
//! assert_eq!(set.get("web").map(|p| p.capacity.max), Some(20));
//!
//! let broken = Source { path: "bad.yaml".into(), text: text.replace("max: 20", "max: 1") };
//! let report = PolicySet::from_sources(vec![broken]).unwrap_err();
//! let first = &report.diagnostics()[0];
//! assert_eq!((first.line, first.column), (5, 18)); // the `2` of `min: 2`
//! assert!(report.to_string().starts_with(
//!     "bad.yaml:5:18: error: capacity `min` (2) is above `max` (1)\n  |\n5 | capacity: { min: 2, max: 1 }"
//! ));
//! # Ok::<(), capstan_policy::Report>(())
//! ```
//!
//! Reading happens in two stages. [`raw`] mirrors the YAML: unknown keys are refused and
//! every value a check may point at keeps its line and column; scalar values (durations, cron
//! expressions, time zones, ...) check themselves while being read. Then the whole set is
//! validated at once, one check per file under `checks/`, and only a set with no problem at
//! all becomes [`model`] policies. Problems come back together as a [`Report`].
//!
//! Other crates' tests build validated policies directly with `test_util` (the `test-util`
//! feature, for `[dev-dependencies]`), whose defaults are validation's.

pub mod expression;
pub mod limits;
pub mod model;
pub mod raw;
#[cfg(any(test, feature = "test-util"))]
pub mod test_util;

mod checks;
mod packaged;
mod parse;
mod report;
mod set;
mod shared;
mod suggest;
mod validate;
mod values;

pub use report::{Diagnostic, Report};
pub use set::{PolicySet, Source};

/// The JSON Schema of a policy file, for editors (`# yaml-language-server: $schema=...`).
/// Object keys are sorted, so the output is the same on every build.
pub fn schema() -> serde_json::Value {
    let mut schema = schemars::schema_for!(raw::PolicyFile).to_value();
    schema.sort_all_objects();
    schema
}
