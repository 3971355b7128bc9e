//! The committed scenarios: their policies validate, they are what the generator writes, and
//! a small trace runs through the real engine with the fleet's warm-up.

use std::path::{Path, PathBuf};

use capstan_engine::Direction;
use capstan_policy::{PolicySet, Source};
use capstan_sim::generate;
use capstan_sim::load::LoadModel;
use capstan_sim::simulate::{Settings, simulate};
use capstan_sim::trace::Trace;
use chrono::TimeDelta;

fn scenarios() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scenarios")
}

const NAMES: [&str; 7] = [
    "step-change",
    "flash-sale",
    "diurnal-week",
    "weekday-rush",
    "weekly-sale",
    "spike-outage",
    "worldcup",
];

#[test]
fn every_scenario_policy_set_validates() {
    for name in NAMES {
        let dir = scenarios().join(name).join("policies");
        let set = PolicySet::load(&[&dir]).unwrap_or_else(|report| panic!("{name}: {report}"));
        assert_eq!(set.len(), 1, "{name}");
    }
}

#[test]
fn committed_scenarios_are_what_the_generator_writes() {
    let mut files = generate::standard(generate::DEFAULT_SEED);
    let source = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/traces/worldcup98-requests-per-minute.csv");
    if let Ok(text) = std::fs::read_to_string(source) {
        files.extend(generate::worldcup(&text).expect("worldcup slice"));
    }
    for (path, text) in files {
        let committed = std::fs::read_to_string(scenarios().join(&path))
            .unwrap_or_else(|e| panic!("scenarios/{path}: {e}"));
        assert!(
            committed == text,
            "scenarios/{path} differs from the generator's output: run `cargo run -p capstan -- scenarios generate scenarios/`"
        );
    }
}

/// Runs `web` (2 to 10 units, add 2 when CPU is above 80 for 2m, cooldowns 2m out and 5m in,
/// its cpu metric's `delay` as given) over 2 units of 100 with demand 100 for two minutes, then
/// 300 for `minutes - 2`, warm-up 3 minutes and the given ingestion delay.
fn small_run(
    delay: &str,
    ingestion: TimeDelta,
    minutes: usize,
) -> Vec<capstan_sim::simulate::Step> {
    let policy = format!(
        "version: 1
name: web
target: {{ ecs_service: {{ cluster: c, service: web }} }}
capacity: {{ min: 2, max: 10 }}
metrics:
  cpu: {{ namespace: AWS/ECS, name: CPUUtilization, stat: Average, period: 1m{delay} }}
scale_out:
  - {{ when: {{ metric: cpu, above: 80, for: 2m }}, add: 2 }}
guards:
  cooldown: {{ out: 2m, in: 5m }}
"
    );
    let mut csv = String::from("timestamp,demand\n");
    for minute in 0..minutes {
        let demand = if minute < 2 { 100 } else { 300 };
        csv.push_str(&format!("2026-01-05T00:{minute:02}:00Z,{demand}\n"));
    }
    run_web(policy, &csv, 2, ingestion).0.steps
}

/// Runs the policy `web.yaml` holding `policy` over the trace `csv`, on units of 100 that warm
/// up in 3 minutes, from `initial` units, with the given ingestion delay; and its summary.
fn run_web(
    policy: String,
    csv: &str,
    initial: u32,
    ingestion: TimeDelta,
) -> (capstan_sim::simulate::Run, capstan_sim::summary::Summary) {
    let set = PolicySet::from_sources(vec![Source {
        path: "web.yaml".into(),
        text: policy,
    }])
    .expect("valid policy");
    let trace = Trace::from_csv("t.csv", csv).expect("trace");
    let settings = Settings {
        load: Some(LoadModel {
            per_unit_capacity: 100.0,
            connections_per_unit: None,
        }),
        warmup: TimeDelta::minutes(3),
        initial: Some(initial),
        ingestion,
        utilization: Vec::new(),
    };
    let run = simulate(&trace, set.policies(), &settings, || ()).remove(0);
    let summary = capstan_sim::summary::Summary::of(&run, settings.load);
    (run, summary)
}

#[test]
fn a_small_trace_through_the_real_engine_with_warmup() {
    // Datapoints readable as soon as their minute ends, and a metric with no delay: the
    // decisions follow the minute just ended. 2 units of 100: demand 300 saturates them from
    // minute 2.
    let steps = &small_run(", delay: 0s", TimeDelta::zero(), 10);
    let desired: Vec<u32> = steps.iter().map(|s| s.desired).collect();
    let in_service: Vec<u32> = steps.iter().map(|s| s.in_service).collect();
    // Minutes 2 and 3 breach; the pass at the end of minute 3 adds 2 (desired 4 from minute 3);
    // they serve from minute 7 (00:04 + 3m). After the 2-minute cooldown, minutes 4 and 5 still
    // breach, but adding 2 to the 2 in service asks for the 4 launched: the rule holds while
    // they warm up. At the end of minute 6 the 4 serve, and minutes 5 and 6, measured on 2
    // units, still breach, so 2 more are added to the 4; by minute 9 CPU (75% on 4 units) no
    // longer breaches.
    assert_eq!(desired, [2, 2, 2, 4, 4, 4, 6, 6, 6, 6]);
    assert_eq!(in_service, [2, 2, 2, 2, 2, 2, 2, 4, 4, 4]);
    assert!(
        steps[5].why.contains("while launches warm up"),
        "{}",
        steps[5].why
    );
    assert_eq!(steps[3].action, Some(Direction::Out));
    assert!(steps[3].why.contains("scale_out[0]"), "{}", steps[3].why);
}

#[test]
fn the_simulated_ingestion_delay_holds_decisions_back_by_the_metrics_delay() {
    // Datapoints land 2 minutes after their minute, and the metric has the default delay of
    // 2m: the pass at the end of minute m sees minutes up to m - 2, so the first scale-out
    // (minutes 2 and 3 breaching) comes at the end of minute 5 instead of 3, and serves from
    // minute 9 (00:06 + 3m). After the cooldown, at the end of minute 7, minutes 4 and 5 still
    // breach, but the 4 launched cover 2 more than the 2 in service: the rule holds. At the end
    // of minute 8 the 4 serve while minutes 5 and 6, on 2 units, breach once more: the delay
    // costs two minutes of reaction and one extra step.
    let steps = small_run("", capstan_sim::simulate::DEFAULT_INGESTION, 14);
    let desired: Vec<u32> = steps.iter().map(|s| s.desired).collect();
    let in_service: Vec<u32> = steps.iter().map(|s| s.in_service).collect();
    assert_eq!(desired, [2, 2, 2, 2, 2, 4, 4, 4, 6, 6, 6, 6, 6, 6]);
    assert_eq!(in_service, [2, 2, 2, 2, 2, 2, 2, 2, 2, 4, 4, 4, 6, 6]);
    assert!(steps[5].why.contains("scale_out[0]"), "{}", steps[5].why);
    assert!(
        steps[7].why.contains("while launches warm up"),
        "{}",
        steps[7].why
    );
    assert!(
        steps[3].why.starts_with("no rule fired"),
        "minutes 2 and 3 have not landed at the end of minute 3: {}",
        steps[3].why
    );
}

#[test]
fn diurnal_week_is_scored_after_its_history_and_its_forecast_floor_covers_every_peak() {
    use capstan_sim::baseline::BaselineKind;
    use capstan_sim::scenario::Scenario;

    let scenario = Scenario::load(&scenarios().join("diurnal-week"), None).expect("loads");
    let settings = scenario.settings(None);
    let capstan = scenario.run(&settings, || ()).remove(0);
    let baseline = scenario
        .run_baseline(BaselineKind::TargetTracking, &settings, &capstan, || ())
        .expect("target tracking");
    for run in [&capstan, &baseline] {
        assert_eq!(run.steps.len(), 7 * 1440, "{}", run.controller);
        assert_eq!(
            run.steps[0].at.to_rfc3339(),
            "2026-03-02T00:00:00+00:00",
            "{}",
            run.controller
        );
    }
    let floored = capstan
        .steps
        .iter()
        .filter(|step| step.why.contains("(weekly profile"))
        .count();
    assert!(
        floored > 7 * 1400,
        "the weekly profile forecasts: {floored}"
    );
    let (ours, theirs) = (scenario.summary(&capstan), scenario.summary(&baseline));
    assert_eq!(ours.under_provisioned, Some(0));
    assert!(
        ours.capacity_hours <= theirs.capacity_hours,
        "{ours:?} {theirs:?}"
    );
}

/// The done bar of forecast floors on real traffic: with its forecast and no schedule, the
/// example policy misses no minute of worldcup's 48 hours, holds no more capacity-hours than
/// target tracking, and is under-provisioned for at most a quarter of each baseline's minutes.
#[test]
fn worldcup_with_a_forecast_floor_misses_no_minute_at_less_than_target_trackings_cost() {
    use capstan_sim::baseline::BaselineKind;
    use capstan_sim::scenario::Scenario;

    let scenario = Scenario::load(&scenarios().join("worldcup"), None).expect("loads");
    let settings = scenario.settings(None);
    let capstan = scenario.run(&settings, || ()).remove(0);
    assert_eq!(capstan.steps.len(), 2 * 1440);
    let ours = scenario.summary(&capstan);
    assert_eq!(ours.under_provisioned, Some(0));
    for kind in BaselineKind::ALL {
        let baseline = scenario
            .run_baseline(kind, &settings, &capstan, || ())
            .expect("baseline");
        let theirs = scenario.summary(&baseline);
        let (Some(under), Some(their_under)) = (ours.under_provisioned, theirs.under_provisioned)
        else {
            panic!("a load model measures under-provisioning");
        };
        assert!(under * 4 <= their_under, "{kind:?}: {ours:?} {theirs:?}");
        if kind == BaselineKind::TargetTracking {
            assert!(
                ours.capacity_hours <= theirs.capacity_hours,
                "{ours:?} {theirs:?}"
            );
        }
    }
}

/// A run's (actions, flaps, reversals, under-provisioned minutes).
type Figures = (usize, usize, usize, usize);

/// The worldcup scenario run with a plain policy that tracks CPU at 60% and writes no guard, as
/// a user starting out would: its figures, and the target-tracking baseline's.
fn plain_tracking_on_worldcup() -> (Figures, Figures) {
    use capstan_sim::baseline::BaselineKind;
    use capstan_sim::scenario::Scenario;

    let mut scenario = Scenario::load(&scenarios().join("worldcup"), None).expect("loads");
    let plain = "version: 1
name: worldcup
target: { ecs_service: { cluster: sim, service: worldcup } }
capacity: { min: 2, max: 80 }
metrics:
  cpu: { namespace: AWS/ECS, name: CPUUtilization, dimensions: { ClusterName: sim, ServiceName: worldcup }, stat: Average, period: 1m }
track:
  - { metric: cpu, target: 60 }
";
    let set = PolicySet::from_sources(vec![Source {
        path: "plain.yaml".into(),
        text: plain.into(),
    }])
    .expect("valid policy");
    scenario.policies = set.policies().to_vec();
    let settings = scenario.settings(None);
    let capstan = scenario.run(&settings, || ()).remove(0);
    let baseline = scenario
        .run_baseline(BaselineKind::TargetTracking, &settings, &capstan, || ())
        .expect("target tracking");
    let figures = |run| {
        let summary = scenario.summary(run);
        let under = summary.under_provisioned.unwrap_or_default();
        (summary.actions, summary.flaps, summary.reversals, under)
    };
    (figures(&capstan), figures(&baseline))
}

/// Stable defaults, measured: the plain policy acts a quarter as often as target tracking (32
/// actions against 128), misses no minute, and none of its actions undoes the one before within
/// the hour (3 reversals in all, 9%). Proposing from the units in service and holding while
/// launches warm up took it from 92 actions and 25 reversals to 63 and 16; the default
/// tolerance of 20% from there to 32 and 3 (see "Stability of the defaults" in
/// `docs/simulate.md`).
#[test]
fn a_plain_tracking_policy_acts_no_more_than_target_tracking_and_rarely_reverses_on_worldcup() {
    let (capstan, baseline) = plain_tracking_on_worldcup();
    assert_eq!((capstan, baseline), ((32, 0, 3, 0), (128, 62, 66, 0)));
    let ((actions, flaps, reversals, _), (baseline_actions, _, _, _)) = (capstan, baseline);
    assert!(actions <= baseline_actions);
    assert!(flaps * 10 <= actions, "{flaps} of {actions}");
    assert!(reversals * 10 <= actions, "{reversals} of {actions}");
}

/// Demand whose level sits between two capacities, with minute-to-minute swings wider than a
/// unit's share (as WorldCup98's quiet weeks do): a day of 150 ± 60 a minute, pseudo-random
/// and fixed, on units of 100 tracked at 60% CPU (2 units run at 75%, 3 at 50%). Returns the
/// plain tracking policy's (actions, flaps, under-provisioned minutes, capacity-hours) with the
/// given extra guards, capacity-hours to a tenth.
fn noisy_level_between_two_capacities(guards: &str) -> (usize, usize, usize, f64) {
    let policy = format!(
        "version: 1
name: web
target: {{ ecs_service: {{ cluster: c, service: web }} }}
capacity: {{ min: 2, max: 10 }}
metrics:
  cpu: {{ namespace: AWS/ECS, name: CPUUtilization, stat: Average, period: 1m }}
track:
  - {{ metric: cpu, target: 60 }}
{guards}"
    );
    let start = chrono::DateTime::parse_from_rfc3339("2026-01-05T00:00:00Z").expect("time");
    let mut seed: u64 = 7;
    let mut csv = String::from("timestamp,demand\n");
    for minute in 0..24 * 60 {
        // A linear congruential generator: the same trace on every run.
        seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
        let swing = (seed >> 33) as f64 / f64::from(1u32 << 31) * 2.0 - 1.0;
        let at = start + TimeDelta::minutes(minute);
        csv.push_str(&format!(
            "{},{:.0}\n",
            at.to_rfc3339(),
            150.0 + 60.0 * swing
        ));
    }
    let (_, summary) = run_web(policy, &csv, 3, TimeDelta::minutes(2));
    (
        summary.actions,
        summary.flaps,
        summary.under_provisioned.unwrap_or_default(),
        (summary.capacity_hours * 10.0).round() / 10.0,
    )
}

/// After a flap, scale-in waits an hour (`stabilization.in_after_flap`): on a noisy level the
/// default policy flaps once and then holds 3 units, where the 5-minute window alone goes on
/// flapping between 2 and 3; holding costs capacity.
#[test]
fn a_remembered_flap_lengthens_scale_in_and_stops_the_flapping_on_a_noisy_level() {
    let damped = noisy_level_between_two_capacities("");
    let undamped =
        noisy_level_between_two_capacities("guards: { stabilization: { in_after_flap: 0s } }");
    assert_eq!(damped, (4, 1, 0, 89.7));
    assert_eq!(undamped, (16, 6, 1, 73.3));
}

/// The example policies as (actions, flaps, reversals). On step-change and spike-outage one of
/// four or five actions is a flap: the saturation rule doubles again on a datapoint measured
/// before the first doubling's tasks served (the metric lags them by its 2-minute delay), and
/// tracking brings the excess back ten minutes later.
#[test]
fn the_shipped_example_policies_flap_on_at_most_a_tenth_of_their_actions_on_recurring_traffic() {
    use capstan_sim::scenario::Scenario;

    let figures: Vec<(&str, usize, usize, usize)> = NAMES
        .iter()
        .map(|name| {
            let scenario = Scenario::load(&scenarios().join(name), None).expect("loads");
            let run = scenario.run(&scenario.settings(None), || ()).remove(0);
            let summary = scenario.summary(&run);
            (*name, summary.actions, summary.flaps, summary.reversals)
        })
        .collect();
    assert_eq!(
        figures,
        [
            ("step-change", 4, 1, 1),
            ("flash-sale", 7, 0, 1),
            ("diurnal-week", 135, 0, 14),
            ("weekday-rush", 14, 0, 9),
            ("weekly-sale", 4, 0, 1),
            ("spike-outage", 5, 1, 1),
            ("worldcup", 32, 0, 3),
        ]
    );
    for (name, actions, flaps, _) in figures {
        assert!(
            matches!(name, "step-change" | "spike-outage") || flaps * 10 <= actions,
            "{name}: {flaps} of {actions}"
        );
    }
}
