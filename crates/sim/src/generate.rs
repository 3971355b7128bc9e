//! The seeded scenario generator: the six standard traces, their policies, settings and
//! READMEs, as files. The same seed always gives the same bytes (a xorshift64* generator, no
//! external RNG). The real-world `worldcup` scenario is cut from the WorldCup98 trace by
//! [`worldcup`].

use std::collections::BTreeMap;
use std::f64::consts::PI;
use std::fmt::Write as _;
use std::path::Path;

use chrono::{DateTime, NaiveDateTime, TimeDelta, Utc};

/// The default seed.
pub const DEFAULT_SEED: u64 = 1998;

/// Demand one unit serves at 100% CPU in the synthetic scenarios, requests per minute.
pub const PER_UNIT: f64 = 100.0;

/// Demand one unit serves at 100% CPU in the `worldcup` scenario, requests per minute.
pub const WORLDCUP_PER_UNIT: f64 = 6_000.0;

/// xorshift64*: small, fast, and the same everywhere.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        Self((seed ^ 0x9E37_79B9_7F4A_7C15) | 1)
    }

    /// Uniform in [0, 1).
    fn next(&mut self) -> f64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11) as f64 / (1u64 << 53) as f64
    }

    /// `value` with multiplicative noise of ± `fraction`.
    fn noisy(&mut self, value: f64, fraction: f64) -> f64 {
        value * (1.0 + fraction * (2.0 * self.next() - 1.0))
    }
}

fn time(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc))
        .unwrap_or_default()
}

/// A trace as CSV: `timestamp,demand`, one row per `Some` minute; `None` cells are written
/// empty, and minutes in `skip` are left out.
fn csv(start: DateTime<Utc>, demand: &[Option<f64>], skip: impl Fn(usize) -> bool) -> String {
    let mut out = String::from("timestamp,demand\n");
    for (i, value) in demand.iter().enumerate() {
        if skip(i) {
            continue;
        }
        let at = start + TimeDelta::minutes(i as i64);
        let cell = value.map_or_else(String::new, |v| format!("{v:.0}"));
        let _ = writeln!(out, "{},{cell}", at.format("%Y-%m-%dT%H:%M:%SZ"));
    }
    out
}

/// What a scenario's policy adds to the example rules: nothing, a schedule block, or a
/// forecast floor on the requests it serves.
enum Floor<'a> {
    /// The rules alone.
    None,
    /// A `schedule:` block, as written.
    Schedule(&'a str),
    /// A `forecast` of the `requests` metric with this `per_replica`.
    Forecast(f64),
}

/// The policy every scenario uses, with the floor given: what a user aiming at about 60% CPU
/// would write.
fn policy(name: &str, min: u32, max: u32, floor: &Floor<'_>) -> String {
    let (requests, extra) = match floor {
        Floor::None => (String::new(), String::new()),
        Floor::Schedule(schedule) => (String::new(), (*schedule).to_owned()),
        Floor::Forecast(per_replica) => (
            format!(
                "  requests:
    namespace: AWS/ApplicationELB
    name: RequestCount
    dimensions: {{ LoadBalancer: app/{name}/sim }}
    stat: Sum
    period: 1m
"
            ),
            format!(
                "# The requests the load balancer receives, forecast from their daily and weekly profile: one
# task serves {unit:.0} a minute at 100% CPU, so {per_replica:.0} a task (70%) leaves room for the
# forecast's error. The floor rises 10 minutes ahead of a forecast peak, which covers the
# 3-minute warm-up.
forecast: {{ metric: requests, per_replica: {per_replica:.0}, lead: 10m }}
",
                unit = per_replica / 0.7
            ),
        ),
    };
    format!(
        "# yaml-language-server: $schema=../../../docs/policy.schema.json
#
# Example policy for the `{name}` scenario: CPU tracked at 60%. The tracking rule scales from
# the tasks in service, holds while launches warm up and scales in after five minutes of asking
# for less (the defaults). Saturated CPU (above 95% for a minute) means demand is unknown and
# at least the capacity in service, so double.
version: 1
name: {name}
target:
  ecs_service: {{ cluster: sim, service: {name} }}
capacity: {{ min: {min}, max: {max} }}
metrics:
  cpu:
    namespace: AWS/ECS
    name: CPUUtilization
    dimensions: {{ ClusterName: sim, ServiceName: {name} }}
    stat: Average
    period: 1m
{requests}track:
  - {{ metric: cpu, target: 60 }}
scale_out:
  - {{ when: {{ metric: cpu, above: 95, for: 1m }}, add_percent: 100 }}
{extra}"
    )
}

/// `scenario.json`; `history_days` days at the start of the trace are simulated but not scored.
fn config(
    initial: u32,
    per_unit: f64,
    step_add: u32,
    step_remove: u32,
    history_days: Option<u32>,
) -> String {
    let history =
        history_days.map_or_else(String::new, |days| format!("\n  \"history_days\": {days},"));
    format!(
        r#"{{
  "load": {{ "per_unit_capacity": {per_unit:.1} }},
  "initial_capacity": {initial},
  "warmup_secs": 180,{history}
  "baseline": {{
    "metric": "cpu",
    "target": 60.0,
    "step": {{ "upper": 70.0, "lower": 40.0, "out_periods": 3, "in_periods": 15, "add": {step_add}, "remove": {step_remove} }}
  }}
}}
"#
    )
}

/// The days of history before the scored window of the scenarios with a forecast floor: a
/// week, so that the weekly profile has a cycle to learn from.
const HISTORY_DAYS: u32 = 7;

const LOAD_MODEL: &str = "## Load model

`demand` is requests per minute. One unit (an ECS task) serves 100 requests per minute at
100% CPU; CPU is `min(100, demand / (in_service × 100) × 100)` over the units in service
(launches serve after the 3-minute warm-up). A minute is under-provisioned when demand exceeds
`in_service × 100`. Noise is multiplicative and uniform, drawn from a seeded xorshift64*;
regenerate with `cargo run -p capstan -- scenarios generate scenarios/ --seed 1998`.
The baselines (`scenario.json`): target tracking at 60% CPU; step scaling adding `add` units
after 3 minutes above 70% and removing `remove` after 15 minutes below 40%.
";

/// The flash sale's demand `minute` minutes after 17:00: 1,500 requests per minute before it,
/// 3,000 at 17:00, 4,500 from 17:01 to 18:30, falling back to 1,500 by 19:30.
fn sale(minute: f64) -> f64 {
    if minute < 0.0 {
        1500.0
    } else if minute < 2.0 {
        1500.0 + 3000.0 * (minute + 1.0) / 2.0
    } else if minute < 90.0 {
        4500.0
    } else if minute < 150.0 {
        4500.0 - 3000.0 * (minute - 90.0) / 60.0
    } else {
        1500.0
    }
}

/// Every file of the six standard scenarios, by path relative to the scenarios directory.
pub fn standard(seed: u64) -> BTreeMap<String, String> {
    let mut files = BTreeMap::new();
    let mut add = |name: &str, trace: String, policy: String, config: String, readme: String| {
        files.insert(format!("{name}/trace.csv"), trace);
        files.insert(format!("{name}/policies/{name}.yaml"), policy);
        files.insert(format!("{name}/scenario.json"), config);
        files.insert(
            format!("{name}/README.md"),
            format!("{readme}\n{LOAD_MODEL}"),
        );
    };

    // step-change: 6 hours; demand triples at 02:00 and falls back at 04:00.
    let mut rng = Rng::new(seed);
    let start = time("2026-03-02T00:00:00Z");
    let demand: Vec<Option<f64>> = (0..360)
        .map(|i| {
            let level = if (120..240).contains(&i) {
                3600.0
            } else {
                1200.0
            };
            Some(rng.noisy(level, 0.04))
        })
        .collect();
    add(
        "step-change",
        csv(start, &demand, |_| false),
        policy("step-change", 2, 80, &Floor::None),
        config(20, PER_UNIT, 4, 2, None),
        "# step-change\n\nSix hours from Monday 2 March 2026 00:00 UTC. Demand is 1,200 requests per minute (±4%),\ntriples to 3,600 at 02:00 in one minute and falls back to 1,200 at 04:00.\n".into(),
    );

    // flash-sale: Friday 20 November 2026, 12:00 to 23:00 UTC (London is on GMT, so 17:00
    // London is 17:00 UTC). Demand triples from 1,500 to 4,500 within two minutes of 17:00,
    // holds to 18:30 and decays to 1,500 by 19:30.
    let mut rng = Rng::new(seed.wrapping_add(1));
    let start = time("2026-11-20T12:00:00Z");
    let demand: Vec<Option<f64>> = (0..660)
        .map(|i| {
            let minute = f64::from(i as u32) - 300.0; // minutes since 17:00
            Some(rng.noisy(sale(minute), 0.04))
        })
        .collect();
    let schedule = "schedule:
  # The sale opens at 17:00 London time every Friday and is over by 19:30; 60 tasks serve its
  # 4,500 requests per minute at 75% CPU. The floor rises at 16:50, so that the tasks have
  # warmed up (3 minutes) before the crowd arrives at 17:00.
  - { name: flash-sale, cron: \"50 16 * * FRI\", timezone: Europe/London, duration: 2h40m, min: 60 }
";
    add(
        "flash-sale",
        csv(start, &demand, |_| false),
        policy("flash-sale", 2, 80, &Floor::Schedule(schedule)),
        config(25, PER_UNIT, 4, 2, None),
        "# flash-sale\n\nFriday 20 November 2026, 12:00 to 23:00 UTC. The weekly sale opens at 17:00 Europe/London\n(17:00 UTC in November). Demand is 1,500 requests per minute (±4%) until 17:00, then the\nsale's crowd arrives: 3,000 at 17:00, 4,500 (the peak) from 17:01, held until 18:30, falling\nback to 1,500 by 19:30. The policy's\nschedule raises the floor to 60 tasks from 16:50 to 19:30: ten minutes before the sale, so\nthat the tasks are warm when it opens (a floor rising at 17:00 itself leaves 17:00-17:02\nunder-provisioned while the tasks warm up).\n".into(),
    );

    // weekly-sale: the flash sale's Friday, recurring: two weeks from Monday 9 November 2026,
    // the first one history, each Friday's sale as flash-sale's; no schedule, a forecast floor.
    let mut rng = Rng::new(seed.wrapping_add(5));
    let start = time("2026-11-09T00:00:00Z");
    let demand: Vec<Option<f64>> = (0..14 * 1440)
        .map(|i| {
            let friday = i / 1440 % 7 == 4;
            let minute = f64::from((i % 1440) as u32) - 17.0 * 60.0; // minutes since 17:00
            Some(rng.noisy(if friday { sale(minute) } else { 1500.0 }, 0.04))
        })
        .collect();
    add(
        "weekly-sale",
        csv(start, &demand, |_| false),
        policy("weekly-sale", 2, 80, &Floor::Forecast(0.7 * PER_UNIT)),
        config(25, PER_UNIT, 4, 2, Some(HISTORY_DAYS)),
        "# weekly-sale\n\nThe flash sale without its schedule: fourteen days from Monday 9 November 2026 00:00 UTC, the\nfirst seven history, simulated but not scored (`history_days`); the scored week starts on\nMonday 16 November. Demand is 1,500 requests per minute (±4%), and every Friday the sale of\n`flash-sale` comes at 17:00 UTC: 3,000 at 17:00, 4,500 from 17:01 until 18:30, back to 1,500\nby 19:30. The policy has no schedule: its forecast floor learns the sale from the Friday\nbefore.\n".into(),
    );

    // diurnal-week: two weeks from Monday to Sunday, the first one history; a daily cycle
    // peaking at 15:00 UTC, weekends lower.
    let mut rng = Rng::new(seed.wrapping_add(2));
    let start = time("2026-02-23T00:00:00Z");
    let demand: Vec<Option<f64>> = (0..14 * 1440)
        .map(|i| {
            let day = i / 1440 % 7;
            let hour = f64::from((i % 1440) as u32) / 60.0;
            let amplitude = if day >= 5 { 1800.0 } else { 3000.0 };
            let cycle = 0.5 - 0.5 * (2.0 * PI * (hour - 3.0) / 24.0).cos();
            Some(rng.noisy(600.0 + amplitude * cycle, 0.05))
        })
        .collect();
    add(
        "diurnal-week",
        csv(start, &demand, |_| false),
        policy("diurnal-week", 2, 80, &Floor::Forecast(0.7 * PER_UNIT)),
        config(16, PER_UNIT, 4, 2, Some(HISTORY_DAYS)),
        "# diurnal-week\n\nFourteen days from Monday 23 February 2026 00:00 UTC: the first seven are history, simulated\nbut not scored (`history_days`), so that the policy's forecast has a week to learn from; the\nscored week starts on Monday 2 March. Demand is\n`600 + A × (1 − cos(2π (hour − 3) / 24)) / 2` requests per minute (±5%): lowest at 03:00\nUTC, highest at 15:00, with A = 3,000 on weekdays and 1,800 at the weekend.\n".into(),
    );

    // weekday-rush: two weeks from Monday to Sunday, the first one history; on weekdays demand
    // jumps fivefold within two minutes at 09:00 UTC and falls back from 17:00.
    let mut rng = Rng::new(seed.wrapping_add(4));
    let start = time("2026-02-23T00:00:00Z");
    let demand: Vec<Option<f64>> = (0..14 * 1440)
        .map(|i| {
            let weekday = i / 1440 % 7 < 5;
            let minute = f64::from((i % 1440) as u32) - 9.0 * 60.0; // minutes since 09:00
            let rush = match minute {
                m if !weekday || m < 0.0 => 0.0,
                m if m < 2.0 => (m + 1.0) / 2.0,
                m if m < 480.0 => 1.0,
                m if m < 510.0 => 1.0 - (m - 480.0) / 30.0,
                _ => 0.0,
            };
            Some(rng.noisy(600.0 + 2400.0 * rush, 0.05))
        })
        .collect();
    add(
        "weekday-rush",
        csv(start, &demand, |_| false),
        policy("weekday-rush", 2, 80, &Floor::Forecast(0.7 * PER_UNIT)),
        config(10, PER_UNIT, 4, 2, Some(HISTORY_DAYS)),
        "# weekday-rush\n\nFourteen days from Monday 23 February 2026 00:00 UTC: the first seven are history, simulated\nbut not scored (`history_days`), so that the policy's forecast has a week to learn from; the\nscored week starts on Monday 2 March. Demand is 600 requests per minute (±5%); on weekdays it\njumps to 3,000 within two minutes of 09:00 UTC (1,800 at 09:00, 3,000 from 09:01), holds until\n17:00 and falls back to 600 by 17:30. Weekends stay at 600. Every weekday's rush is a step no\nreactive rule can meet without missing its warm-up; the policy's forecast floor rises at 08:50.\n".into(),
    );

    // spike-outage: 8 hours; a spike at 03:00 for an hour; the metric is missing 03:10-03:30
    // (the first 10 minutes as missing rows, the next 10 as empty cells).
    let mut rng = Rng::new(seed.wrapping_add(3));
    let start = time("2026-03-04T00:00:00Z");
    let demand: Vec<Option<f64>> = (0..480)
        .map(|i| {
            let level = match i {
                180..185 => 1500.0 + 3000.0 * f64::from(i as u32 - 179) / 5.0,
                185..240 => 4500.0,
                _ => 1500.0,
            };
            let value = rng.noisy(level, 0.04);
            (!(200..210).contains(&i)).then_some(value)
        })
        .collect();
    add(
        "spike-outage",
        csv(start, &demand, |i| (190..200).contains(&i)),
        policy("spike-outage", 2, 80, &Floor::None),
        config(25, PER_UNIT, 4, 2, None),
        "# spike-outage\n\nEight hours from Wednesday 4 March 2026 00:00 UTC. Demand is 1,500 requests per minute\n(±4%); at 03:00 it ramps to 4,500 over 5 minutes and holds until 04:00. The metric is out\nfor 20 minutes, 03:10 to 03:30: rows 03:10-03:19 are missing and 03:20-03:29 have empty\n`demand` cells, so neither capstan nor the baselines see a datapoint then. Under-provisioning\nis counted against the demand interpolated across the gap (it held at the spike's level).\n".into(),
    );
    files
}

/// The `worldcup` scenario's files, cut from the WorldCup98 requests-per-minute trace
/// (`period,count`): the 48 hours from 1998-07-06 12:00 to 1998-07-08 12:00 (as in the source),
/// around the semi-final spike of 7 July, scored after the seven days before them as history. Counts are kept as they are; the load model sets one
/// unit to serve 6,000 requests per minute, so the busiest minute (229,426) needs 39 units.
pub fn worldcup(source: &str) -> Result<BTreeMap<String, String>, String> {
    let scored = NaiveDateTime::parse_from_str("1998-07-06 12:00:00", "%Y-%m-%d %H:%M:%S")
        .map_err(|e| e.to_string())?;
    let from = scored - TimeDelta::days(HISTORY_DAYS.into());
    let to = scored + TimeDelta::hours(48);
    let mut trace = String::from("timestamp,demand\n");
    for line in source.lines().skip(1) {
        let Some((period, count)) = line.split_once(',') else {
            continue;
        };
        let Ok(at) = NaiveDateTime::parse_from_str(period.trim(), "%Y-%m-%d %H:%M:%S") else {
            continue;
        };
        if at >= from && at < to {
            let _ = writeln!(
                trace,
                "{},{}",
                at.format("%Y-%m-%dT%H:%M:%SZ"),
                count.trim()
            );
        }
    }
    let mut files = BTreeMap::new();
    files.insert("worldcup/trace.csv".into(), trace);
    files.insert(
        "worldcup/policies/worldcup.yaml".into(),
        policy("worldcup", 2, 80, &Floor::Forecast(0.7 * WORLDCUP_PER_UNIT)),
    );
    files.insert(
        "worldcup/scenario.json".into(),
        config(8, WORLDCUP_PER_UNIT, 4, 2, Some(HISTORY_DAYS)),
    );
    files.insert(
        "worldcup/README.md".into(),
        "# worldcup

Real traffic: requests per minute to the 1998 FIFA World Cup web site, 48 hours from
1998-07-06 12:00 to 1998-07-08 12:00 (timestamps as in the source, read as UTC), around the
semi-final of 7 July, whose spike peaks at 229,426 requests per minute at 21:41. The trace
starts seven days earlier, on 1998-06-29 12:00: that week is history, simulated but not scored
(`history_days`), so that the policy's forecast has a week to learn from. Cut from
`worldcup98-requests-per-minute.csv` (derived from the Internet Traffic Archive's WorldCup98
access logs by nimamahmoudi/worldcup98-dataset, MIT License, Copyright (c) 2019 Nima
Mahmoudi); minutes with no requests are absent, as in the source.

## Load model

Counts are used as they are: `demand` is requests per minute. Scaled to the fleet by the load
model: one unit serves 6,000 requests per minute at 100% CPU, so the busiest minute needs 39
units and the quietest night minutes one. CPU is `min(100, demand / (in_service × 6000) × 100)`
over the units in service (3-minute warm-up); a minute is under-provisioned when demand exceeds
`in_service × 6000`. The policy is the same example policy as the synthetic scenarios', with
diurnal-week's forecast floor at the same 70% of a unit; the baselines are target tracking at 60% CPU and step scaling (+4 after 3 minutes above 70%, −2
after 15 minutes below 40%).
"
        .into(),
    );
    Ok(files)
}

/// Writes `files` under `dir`, creating directories.
pub fn write(dir: &Path, files: &BTreeMap<String, String>) -> std::io::Result<()> {
    for (path, text) in files {
        let path = dir.join(path);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(path, text)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_bytes() {
        assert_eq!(standard(7), standard(7));
        assert_ne!(standard(7), standard(8));
    }

    #[test]
    fn every_scenario_has_its_files() {
        let files = standard(DEFAULT_SEED);
        for name in [
            "step-change",
            "flash-sale",
            "diurnal-week",
            "weekday-rush",
            "weekly-sale",
            "spike-outage",
        ] {
            for file in ["trace.csv", "scenario.json", "README.md"] {
                assert!(
                    files.contains_key(&format!("{name}/{file}")),
                    "{name}/{file}"
                );
            }
            assert!(files.contains_key(&format!("{name}/policies/{name}.yaml")));
        }
    }
}
