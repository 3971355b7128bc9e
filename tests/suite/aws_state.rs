//! `DynamoStateStore` against moto. Run with
//! `scripts/with-emulator.sh cargo test -p capstan-tests --test suite aws_state::`.

use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{DateTime, TimeDelta, TimeZone, Utc};

use capstan_aws::state::{CLAIM_RETENTION, Claim, DECISION_RETENTION, Decision};
use capstan_aws::{DynamoStateStore, ErrorKind, create_table};
use capstan_engine::model::Target;
use capstan_engine::{Change, Direction, Recommendation, ResourceState};
use capstan_runner::ports::{Lease, LeaseLost, SaveError, StateStore};
use capstan_tests::calls::{Calls, counts};
use capstan_tests::{sdk_config, unique};

/// A store on a new table of its own, and a client to look at the table directly.
async fn new_store() -> (DynamoStateStore, aws_sdk_dynamodb::Client) {
    let dynamodb = aws_sdk_dynamodb::Client::new(&sdk_config().await);
    let table = unique("capstan-state");
    create_table(&dynamodb, &table)
        .await
        .expect("creating the table");
    (DynamoStateStore::new(dynamodb.clone(), &table), dynamodb)
}

/// A store on a new table of its own whose calls are counted.
async fn counted_store() -> (DynamoStateStore, Calls) {
    let config = sdk_config().await;
    let table = unique("capstan-state");
    create_table(&aws_sdk_dynamodb::Client::new(&config), &table)
        .await
        .expect("creating the table");
    let calls = Calls::default();
    let client = aws_sdk_dynamodb::Client::from_conf(
        aws_sdk_dynamodb::config::Builder::from(&config)
            .interceptor(calls.clone())
            .build(),
    );
    (DynamoStateStore::new(client, &table), calls)
}

/// `count` Auto Scaling groups, `group-0` and on.
fn groups(count: usize) -> Vec<Target> {
    (0..count)
        .map(|n| Target::AutoscalingGroup {
            name: format!("group-{n}"),
        })
        .collect()
}

fn orders() -> Target {
    Target::EcsService {
        cluster: "shop".into(),
        service: "orders".into(),
    }
}

fn noon() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 2, 12, 0, 0)
        .single()
        .expect("a valid time")
}

#[tokio::test(flavor = "multi_thread")]
async fn state_is_saved_and_loaded_per_resource() {
    let (store, _) = new_store().await;
    let service = orders();
    // The same identity under another kind is another resource.
    let group = Target::AutoscalingGroup {
        name: "shop/orders".into(),
    };
    let at = Utc
        .with_ymd_and_hms(2025, 3, 1, 12, 30, 5)
        .single()
        .expect("a valid time")
        + TimeDelta::milliseconds(125);
    let out = Change {
        at,
        direction: Direction::Out,
        from: 2,
        to: 4,
    };
    let back_in = Change {
        at: at + TimeDelta::minutes(10),
        direction: Direction::In,
        from: 4,
        to: 3,
    };

    assert_eq!(
        store.load(&service).await.expect("loading"),
        ResourceState::default()
    );

    assert_eq!(
        store
            .acquire_lease(&service, "evaluation-1")
            .await
            .expect("acquiring"),
        Lease::Acquired
    );
    let first = ResourceState {
        changes: vec![out],
        recommendations: vec![Recommendation { at, capacity: 4 }],
        evaluations_without_data: 0,
        intent: None,
        settling: false,
        history: None,
        flapped_at: None,
    };
    store
        .save(&service, "evaluation-1", &first)
        .await
        .expect("saving");
    assert_eq!(store.load(&service).await.expect("loading"), first);
    assert_eq!(
        store.load(&group).await.expect("loading"),
        ResourceState::default()
    );

    let second = ResourceState {
        changes: vec![out, back_in],
        recommendations: Vec::new(),
        evaluations_without_data: 3,
        intent: None,
        settling: true,
        history: None,
        flapped_at: Some(back_in.at),
    };
    store
        .save(&service, "evaluation-1", &second)
        .await
        .expect("saving again");
    assert_eq!(store.load(&service).await.expect("loading"), second);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_missing_table_is_not_found() {
    let dynamodb = aws_sdk_dynamodb::Client::new(&sdk_config().await);
    let table = unique("no-such-table");
    let store = DynamoStateStore::new(dynamodb, &table);
    let group = Target::AutoscalingGroup { name: "web".into() };

    let error = store
        .load(&group)
        .await
        .expect_err("the table does not exist");

    assert_eq!(error.kind(), ErrorKind::NotFound);
    assert_eq!(error.operation(), "dynamodb:GetItem");
    assert_eq!(
        error.resource(),
        format!("{table}/resource#autoscaling_group#web")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_lease_has_one_holder_until_released_or_expired() {
    let store = new_store()
        .await
        .0
        .with_lease_duration(TimeDelta::minutes(2));
    let target = orders();
    let until = noon() + TimeDelta::minutes(2);
    let held_by_a = Lease::HeldBy {
        holder: "a".into(),
        until,
    };

    let acquire = |holder: &'static str, at: DateTime<Utc>| {
        let (store, target) = (&store, &target);
        async move {
            store
                .acquire_lease_at(target, holder, at)
                .await
                .expect("acquiring")
        }
    };
    assert_eq!(acquire("a", noon()).await, Lease::Acquired);
    assert_eq!(acquire("b", noon()).await, held_by_a);
    assert_eq!(
        acquire("b", until - TimeDelta::seconds(1)).await,
        held_by_a,
        "still held a second before expiry"
    );
    // Another resource has its own lease.
    assert_eq!(
        store
            .acquire_lease_at(
                &Target::AutoscalingGroup { name: "web".into() },
                "b",
                noon()
            )
            .await
            .expect("acquiring"),
        Lease::Acquired
    );

    // The holder renews: the lease now runs two minutes from the renewal.
    assert_eq!(
        acquire("a", noon() + TimeDelta::minutes(1)).await,
        Lease::Acquired
    );
    assert_eq!(
        acquire("b", until).await,
        Lease::HeldBy {
            holder: "a".into(),
            until: until + TimeDelta::minutes(1),
        },
        "renewed"
    );

    // Expired: another holder takes it, and the former holder can no longer release it.
    assert_eq!(
        acquire("b", until + TimeDelta::minutes(1)).await,
        Lease::Acquired
    );
    assert!(!store.release_lease(&target, "a").await.expect("releasing"));
    assert_eq!(
        acquire("a", until + TimeDelta::minutes(1)).await,
        Lease::HeldBy {
            holder: "b".into(),
            until: until + TimeDelta::minutes(3),
        }
    );

    // Released by its holder: free again at once.
    assert!(store.release_lease(&target, "b").await.expect("releasing"));
    assert_eq!(
        acquire("a", until + TimeDelta::minutes(1)).await,
        Lease::Acquired
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn of_racing_evaluators_exactly_one_takes_the_lease() {
    let (store, _) = new_store().await;
    let target = orders();
    let holders: Vec<String> = (0..8).map(|n| format!("evaluator-{n}")).collect();

    let racers: Vec<_> = holders
        .iter()
        .map(|holder| {
            let (store, target, holder) = (store.clone(), target.clone(), holder.clone());
            tokio::spawn(async move { store.acquire_lease_at(&target, &holder, noon()).await })
        })
        .collect();
    let mut answers = Vec::new();
    for racer in racers {
        answers.push(racer.await.expect("the task ran").expect("acquiring"));
    }

    let winners: Vec<&String> = holders
        .iter()
        .zip(&answers)
        .filter(|(_, answer)| **answer == Lease::Acquired)
        .map(|(holder, _)| holder)
        .collect();
    assert_eq!(winners.len(), 1, "{answers:?}");
    for answer in &answers {
        if let Lease::HeldBy { holder, .. } = answer {
            assert_eq!(holder, winners[0], "every loser is told the winner");
        }
    }
}

/// The claim item of the event `key`, as stored.
async fn claim_item(
    dynamodb: &aws_sdk_dynamodb::Client,
    store: &DynamoStateStore,
    key: &str,
) -> std::collections::HashMap<String, AttributeValue> {
    dynamodb
        .get_item()
        .table_name(store.table())
        .key("pk", AttributeValue::S(format!("event#{key}")))
        .key("sk", AttributeValue::S("claim".into()))
        .consistent_read(true)
        .send()
        .await
        .expect("reading the claim")
        .item
        .expect("the claim exists")
}

#[tokio::test(flavor = "multi_thread")]
async fn a_completed_event_is_a_duplicate_for_every_later_delivery() {
    let (store, dynamodb) = new_store().await;
    let key = "alarm#capstan-orders-cpu#2026-03-02T12:00:00Z";
    let claim = |claimant: &'static str, late: i64| {
        let store = &store;
        async move {
            store
                .claim_event(key, claimant, noon() + TimeDelta::seconds(late))
                .await
                .expect("claiming")
        }
    };

    assert_eq!(claim("request-1", 0).await, Claim::Claimed);
    store
        .complete_event(key, "request-1", noon() + TimeDelta::seconds(5))
        .await
        .expect("completing");
    // Another delivery, a late duplicate of the same invocation, and one long after: all
    // duplicates, naming the first claimant.
    for (claimant, late) in [("request-2", 6), ("request-1", 60), ("request-3", 3600)] {
        assert_eq!(
            claim(claimant, late).await,
            Claim::Duplicate {
                by: "request-1".into(),
                at: noon()
            },
            "{claimant}"
        );
    }
    assert_eq!(
        store
            .claim_event("tick#another-event", "request-2", noon())
            .await
            .expect("claiming"),
        Claim::Claimed
    );

    let item = claim_item(&dynamodb, &store, key).await;
    assert_eq!(item["progress"], AttributeValue::S("completed".into()));
    assert_eq!(
        item["expires_at"],
        AttributeValue::N((noon() + CLAIM_RETENTION).timestamp().to_string())
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_event_in_progress_is_claimed_again_by_its_claimant_and_taken_over_once_expired() {
    let (store, dynamodb) = new_store().await;
    let store = store.with_lease_duration(TimeDelta::seconds(70));
    let key = "tick#2026-03-02T12:00:00+00:00";
    let claim = |claimant: &'static str, late: i64| {
        let store = &store;
        async move {
            store
                .claim_event(key, claimant, noon() + TimeDelta::seconds(late))
                .await
                .expect("claiming")
        }
    };
    let in_progress = |by: &str, until: i64| Claim::InProgress {
        by: by.into(),
        until: noon() + TimeDelta::seconds(until),
    };

    assert_eq!(claim("request-1", 0).await, Claim::Claimed);
    assert_eq!(
        claim("request-2", 69).await,
        in_progress("request-1", 70),
        "another live attempt is kept out"
    );
    // The claimant asks again (its first write took effect but the answer was lost, and the
    // SDK retried it): the claim is still its own, and runs from the second write.
    assert_eq!(claim("request-1", 30).await, Claim::Claimed, "asked again");
    assert_eq!(claim("request-2", 99).await, in_progress("request-1", 100));
    // The claimant died: once its claim expires, another delivery takes it over.
    assert_eq!(claim("request-2", 100).await, Claim::Claimed, "expired");
    let error = store
        .complete_event(key, "request-1", noon() + TimeDelta::seconds(101))
        .await
        .expect_err("no longer request-1's claim");
    assert_eq!(error.operation(), "dynamodb:UpdateItem");
    assert!(
        error.to_string().contains("no longer request-1's"),
        "{error}"
    );
    store
        .complete_event(key, "request-2", noon() + TimeDelta::seconds(101))
        .await
        .expect("completing");
    assert_eq!(
        claim("request-3", 102).await,
        Claim::Duplicate {
            by: "request-2".into(),
            at: noon() + TimeDelta::seconds(100)
        }
    );
    let item = claim_item(&dynamodb, &store, key).await;
    assert_eq!(
        item["in_progress_until"],
        AttributeValue::N((noon() + TimeDelta::seconds(170)).timestamp().to_string())
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_claim_given_back_by_its_claimant_is_taken_at_once_by_the_next_delivery() {
    let (store, _) = new_store().await;
    let key = "tick#2026-03-02T12:01:00+00:00";
    let claim = |claimant: &'static str| {
        let store = &store;
        async move {
            store
                .claim_event(key, claimant, noon())
                .await
                .expect("claiming")
        }
    };

    assert_eq!(claim("attempt-1").await, Claim::Claimed);
    assert!(
        matches!(claim("attempt-2").await, Claim::InProgress { by, .. } if by == "attempt-1"),
        "kept out while attempt-1 works on it"
    );
    assert!(
        !store
            .release_event(key, "attempt-2")
            .await
            .expect("releasing"),
        "only the claimant gives a claim back"
    );
    assert!(
        store
            .release_event(key, "attempt-1")
            .await
            .expect("releasing")
    );
    assert_eq!(claim("attempt-2").await, Claim::Claimed, "taken at once");
    store
        .complete_event(key, "attempt-2", noon())
        .await
        .expect("completing");
    assert!(
        !store
            .release_event(key, "attempt-2")
            .await
            .expect("releasing"),
        "a completed claim is never given back"
    );
    assert!(
        matches!(claim("attempt-3").await, Claim::Duplicate { by, .. } if by == "attempt-2"),
        "still a duplicate"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_writer_whose_lease_expired_or_was_taken_cannot_save_state() {
    let store = new_store()
        .await
        .0
        .with_lease_duration(TimeDelta::minutes(2));
    let target = orders();
    let state = |evaluations_without_data| ResourceState {
        evaluations_without_data,
        ..ResourceState::default()
    };
    let save = |holder: &'static str, saved: ResourceState, at: DateTime<Utc>| {
        let (store, target) = (&store, &target);
        async move { store.save_at(target, holder, &saved, at).await }
    };
    let lost = |answer: Result<(), SaveError<capstan_aws::AwsError>>| match answer {
        Err(SaveError::LeaseLost(lost)) => lost,
        other => panic!("expected the write to be fenced off, got {other:?}"),
    };

    assert_eq!(
        lost(save("a", state(1), noon()).await),
        LeaseLost::Free,
        "no lease, no write"
    );
    store
        .acquire_lease_at(&target, "a", noon())
        .await
        .expect("acquiring");
    save("a", state(1), noon() + TimeDelta::seconds(119))
        .await
        .expect("saving while the lease holds");
    assert_eq!(
        lost(save("a", state(2), noon() + TimeDelta::minutes(2)).await),
        LeaseLost::Expired(noon() + TimeDelta::minutes(2))
    );
    assert_eq!(
        store
            .acquire_lease_at(&target, "b", noon() + TimeDelta::minutes(3))
            .await
            .expect("acquiring"),
        Lease::Acquired
    );
    assert_eq!(
        lost(save("a", state(2), noon() + TimeDelta::minutes(3)).await),
        LeaseLost::HeldBy {
            holder: "b".into(),
            until: noon() + TimeDelta::minutes(5)
        }
    );
    assert_eq!(
        store.load(&target).await.expect("loading"),
        state(1),
        "nothing changed"
    );

    save("b", state(3), noon() + TimeDelta::minutes(3))
        .await
        .expect("the new holder saves");
    assert_eq!(store.load(&target).await.expect("loading"), state(3));
    assert!(store.release_lease(&target, "b").await.expect("releasing"));
    assert_eq!(
        lost(save("b", state(4), noon() + TimeDelta::minutes(3)).await),
        LeaseLost::Free,
        "given back"
    );
    assert_eq!(store.load(&target).await.expect("loading"), state(3));
}

#[tokio::test(flavor = "multi_thread")]
async fn an_intent_stays_until_the_state_after_the_change_is_saved() {
    let (store, _) = new_store().await;
    let target = orders();
    let earlier = ResourceState {
        changes: vec![Change {
            at: noon(),
            direction: Direction::Out,
            from: 2,
            to: 4,
        }],
        ..ResourceState::default()
    };
    let intent = Change {
        at: noon() + TimeDelta::minutes(15),
        direction: Direction::Out,
        from: 4,
        to: 6,
    };
    store
        .acquire_lease(&target, "evaluation-1")
        .await
        .expect("acquiring");
    store
        .save(&target, "evaluation-1", &earlier)
        .await
        .expect("saving");

    let intending = earlier.intending(intent);
    store
        .save(&target, "evaluation-1", &intending)
        .await
        .expect("saving the intent");
    assert_eq!(
        store.load(&target).await.expect("loading"),
        intending,
        "an evaluation that stopped here leaves its intent behind"
    );

    let after = ResourceState {
        changes: vec![earlier.changes[0], intent],
        ..ResourceState::default()
    };
    store
        .save(&target, "evaluation-1", &after)
        .await
        .expect("saving");
    assert_eq!(store.load(&target).await.expect("loading"), after);
}

/// The decision log of `shop/orders`, oldest first.
async fn decision_log(
    dynamodb: &aws_sdk_dynamodb::Client,
    store: &DynamoStateStore,
) -> Vec<std::collections::HashMap<String, AttributeValue>> {
    dynamodb
        .query()
        .table_name(store.table())
        .key_condition_expression("pk = :pk AND begins_with(sk, :decision)")
        .expression_attribute_values(
            ":pk",
            AttributeValue::S("resource#ecs_service#shop/orders".into()),
        )
        .expression_attribute_values(":decision", AttributeValue::S("decision#".into()))
        .send()
        .await
        .expect("querying the log")
        .items
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread")]
async fn decisions_are_logged_per_resource_in_time_order_with_a_time_to_live() {
    let (store, dynamodb) = new_store().await;
    let target = orders();
    let later = noon() + TimeDelta::minutes(1);
    let logged = store
        .log_decisions(&[
            Decision {
                target: &target,
                policy: "orders",
                at: later,
                evaluator: "request-1",
                outcome: r#"{"result":"applied"}"#.into(),
            },
            Decision {
                target: &target,
                policy: "orders",
                at: noon(),
                evaluator: "request-2",
                outcome: r#"{"result":"unchanged"}"#.into(),
            },
        ])
        .await;
    assert!(logged.iter().all(Result::is_ok), "{logged:?}");

    let entries: Vec<(String, String, String)> = decision_log(&dynamodb, &store)
        .await
        .iter()
        .map(|item| {
            (
                item["sk"].as_s().expect("sk").clone(),
                item["outcome"].as_s().expect("outcome").clone(),
                item["expires_at"].as_n().expect("expires_at").clone(),
            )
        })
        .collect();
    assert_eq!(
        entries,
        [
            (
                "decision#2026-03-02T12:00:00.000Z#request-2".to_owned(),
                r#"{"result":"unchanged"}"#.to_owned(),
                (noon() + DECISION_RETENTION).timestamp().to_string()
            ),
            (
                "decision#2026-03-02T12:01:00.000Z#request-1".to_owned(),
                r#"{"result":"applied"}"#.to_owned(),
                (later + DECISION_RETENTION).timestamp().to_string()
            ),
        ]
    );
    assert_eq!(
        store.load(&target).await.expect("loading"),
        ResourceState::default(),
        "the log is not the state"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn leases_are_taken_and_given_back_in_one_transaction_and_those_of_others_answered() {
    let (store, calls) = counted_store().await;
    let store = store.with_lease_duration(TimeDelta::minutes(2));
    let targets = groups(6);
    // group-1 and group-3 are b's; group-2 is a's already; group-4 was b's and expired.
    for (target, holder, at) in [
        (1, "b", noon()),
        (3, "b", noon()),
        (2, "a", noon()),
        (4, "b", noon() - TimeDelta::minutes(5)),
    ] {
        store
            .acquire_lease_at(&targets[target], holder, at)
            .await
            .expect("acquiring");
    }
    calls.take();
    let held_by_b = Lease::HeldBy {
        holder: "b".into(),
        until: noon() + TimeDelta::minutes(2),
    };

    let answers = store.acquire_leases_at(&targets, "a", noon()).await;

    let answers: Vec<Lease> = answers
        .into_iter()
        .map(|answer| answer.expect("acquiring"))
        .collect();
    use Lease::Acquired;
    assert_eq!(
        answers,
        [
            Acquired,
            held_by_b.clone(),
            Acquired,
            held_by_b.clone(),
            Acquired,
            Acquired
        ]
    );
    assert_eq!(
        calls.take(),
        counts([("TransactWriteItems", 2)]),
        "one cancelled by b's leases, one for the rest"
    );
    // What a took is a's: b is refused it; what b holds is still b's.
    let by_b = store.acquire_leases_at(&targets, "b", noon()).await;
    let held_by_a = Lease::HeldBy {
        holder: "a".into(),
        until: noon() + TimeDelta::minutes(2),
    };
    for (n, answer) in by_b.into_iter().enumerate() {
        let expected = if n == 1 || n == 3 {
            Acquired
        } else {
            held_by_a.clone()
        };
        assert_eq!(answer.expect("acquiring"), expected, "group-{n}");
    }
    calls.take();

    let released = store.release_leases(&targets, "a").await;

    let released: Vec<bool> = released
        .into_iter()
        .map(|answer| answer.expect("releasing"))
        .collect();
    assert_eq!(released, [true, false, true, false, true, true]);
    assert_eq!(calls.take(), counts([("TransactWriteItems", 2)]));
    assert_eq!(
        store
            .acquire_lease_at(&targets[0], "c", noon())
            .await
            .expect("acquiring"),
        Acquired,
        "given back"
    );
    assert_eq!(
        store
            .acquire_lease_at(&targets[1], "c", noon())
            .await
            .expect("acquiring"),
        held_by_b,
        "not a's to give back"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_batched_save_is_fenced_per_resource() {
    let (store, calls) = counted_store().await;
    let store = store.with_lease_duration(TimeDelta::minutes(2));
    let targets = groups(3);
    let state = |evaluations_without_data| ResourceState {
        evaluations_without_data,
        ..ResourceState::default()
    };
    for answer in store.acquire_leases_at(&targets, "a", noon()).await {
        assert_eq!(answer.expect("acquiring"), Lease::Acquired);
    }
    // a's lease of group-1 expired and b took it.
    let later = noon() + TimeDelta::minutes(3);
    for target in [0, 2] {
        store
            .acquire_lease_at(&targets[target], "a", later)
            .await
            .expect("renewing");
    }
    store
        .acquire_lease_at(&targets[1], "b", later)
        .await
        .expect("taking over");
    calls.take();
    let states: Vec<(Target, ResourceState)> = targets
        .iter()
        .cloned()
        .zip([state(1), state(2), state(3)])
        .collect();

    let answers = store.save_all_at("a", &states, later).await;

    assert!(answers[0].is_ok(), "{:?}", answers[0]);
    assert!(answers[2].is_ok(), "{:?}", answers[2]);
    match &answers[1] {
        Err(SaveError::LeaseLost(lost)) => assert_eq!(
            *lost,
            LeaseLost::HeldBy {
                holder: "b".into(),
                until: later + TimeDelta::minutes(2)
            }
        ),
        other => panic!("expected group-1's save to be fenced off, got {other:?}"),
    }
    assert_eq!(calls.take(), counts([("TransactWriteItems", 2)]));
    let loaded: Vec<ResourceState> = store
        .load_all(&targets)
        .await
        .into_iter()
        .map(|answer| answer.expect("loading"))
        .collect();
    assert_eq!(loaded, [state(1), ResourceState::default(), state(3)]);
    assert_eq!(calls.take(), counts([("BatchGetItem", 1)]));
}

#[tokio::test(flavor = "multi_thread")]
async fn many_resources_are_leased_saved_and_loaded_in_batches() {
    const RESOURCES: usize = 150;
    let (store, calls) = counted_store().await;
    let targets = groups(RESOURCES);
    let state = |n: usize| ResourceState {
        evaluations_without_data: u32::try_from(n).expect("small"),
        ..ResourceState::default()
    };

    let leases = store.acquire_leases(&targets, "a").await;
    assert!(
        leases
            .iter()
            .all(|answer| answer.as_ref().is_ok_and(|lease| *lease == Lease::Acquired)),
        "{leases:?}"
    );
    assert_eq!(
        calls.take(),
        counts([("TransactWriteItems", 2)]),
        "100 leases per transaction"
    );

    // Every other resource is saved; the rest were never evaluated.
    let states: Vec<(Target, ResourceState)> = targets
        .iter()
        .enumerate()
        .filter(|(n, _)| n % 2 == 0)
        .map(|(n, target)| (target.clone(), state(n)))
        .collect();
    let saved = store.save_all("a", &states).await;
    assert!(saved.iter().all(Result::is_ok), "{saved:?}");
    assert_eq!(
        calls.take(),
        counts([("TransactWriteItems", 2)]),
        "75 saves, 50 (100 actions) per transaction"
    );

    let loaded = store.load_all(&targets).await;

    assert_eq!(
        calls.take(),
        counts([("BatchGetItem", 2)]),
        "100 keys per call"
    );
    for (n, answer) in loaded.into_iter().enumerate() {
        let expected = if n % 2 == 0 {
            state(n)
        } else {
            ResourceState::default()
        };
        assert_eq!(answer.expect("loading"), expected, "group-{n}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_batched_read_of_a_missing_table_names_each_resource() {
    let dynamodb = aws_sdk_dynamodb::Client::new(&sdk_config().await);
    let table = unique("no-such-table");
    let store = DynamoStateStore::new(dynamodb, &table);

    let answers = store.load_all(&groups(2)).await;

    for (n, answer) in answers.into_iter().enumerate() {
        let error = answer.expect_err("the table does not exist");
        assert_eq!(error.kind(), ErrorKind::NotFound);
        assert_eq!(error.operation(), "dynamodb:BatchGetItem");
        assert_eq!(
            error.resource(),
            format!("{table}/resource#autoscaling_group#group-{n}")
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn decisions_are_logged_25_per_call() {
    let (store, calls) = counted_store().await;
    let target = orders();
    let outcomes: Vec<String> = (0..30).map(|n| format!(r#"{{"n":{n}}}"#)).collect();
    let decisions: Vec<Decision<'_>> = outcomes
        .iter()
        .enumerate()
        .map(|(n, outcome)| Decision {
            target: &target,
            policy: "orders",
            at: noon() + TimeDelta::seconds(i64::try_from(n).expect("small")),
            evaluator: "request-1",
            outcome: outcome.clone(),
        })
        .collect();

    let answers = store.log_decisions(&decisions).await;

    assert!(answers.iter().all(Result::is_ok), "{answers:?}");
    assert_eq!(calls.take(), counts([("BatchWriteItem", 2)]));
    let logged = decision_log(&aws_sdk_dynamodb::Client::new(&sdk_config().await), &store).await;
    let logged: Vec<&String> = logged
        .iter()
        .map(|item| item["outcome"].as_s().expect("outcome"))
        .collect();
    assert_eq!(logged, outcomes.iter().collect::<Vec<_>>(), "in time order");
}
