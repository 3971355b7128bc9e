//! `DynamoStateStore` against moto. Run with
//! `scripts/with-emulator.sh cargo test -p capstan-tests --test aws_state`.

use chrono::{TimeDelta, TimeZone, Utc};

use capstan_aws::{DynamoStateStore, ErrorKind, create_table};
use capstan_engine::model::Target;
use capstan_engine::ports::StateStore;
use capstan_engine::{Direction, LastAction, Recommendation, ResourceState};
use capstan_tests::{sdk_config, unique};

#[tokio::test(flavor = "multi_thread")]
async fn state_is_saved_and_loaded_per_resource() {
    let dynamodb = aws_sdk_dynamodb::Client::new(&sdk_config().await);
    let table = unique("capstan-state");
    create_table(&dynamodb, &table)
        .await
        .expect("creating the table");
    let store = DynamoStateStore::new(dynamodb, &table);
    let service = Target::EcsService {
        cluster: "shop".into(),
        service: "orders".into(),
    };
    // The same identity under another kind is another resource.
    let group = Target::AutoscalingGroup {
        name: "shop/orders".into(),
    };
    let at = Utc
        .with_ymd_and_hms(2025, 3, 1, 12, 30, 5)
        .single()
        .expect("a valid time")
        + TimeDelta::milliseconds(125);
    let out = LastAction {
        at,
        direction: Direction::Out,
        from: 2,
        to: 4,
    };
    let back_in = LastAction {
        at: at + TimeDelta::minutes(10),
        direction: Direction::In,
        from: 4,
        to: 3,
    };

    assert_eq!(
        store.load(&service).await.expect("loading"),
        ResourceState::default()
    );

    let first = ResourceState {
        actions: vec![out],
        recommendations: vec![Recommendation { at, capacity: 4 }],
        evaluations_without_data: 0,
    };
    store.save(&service, &first).await.expect("saving");
    assert_eq!(store.load(&service).await.expect("loading"), first);
    assert_eq!(
        store.load(&group).await.expect("loading"),
        ResourceState::default()
    );

    let second = ResourceState {
        actions: vec![out, back_in],
        recommendations: Vec::new(),
        evaluations_without_data: 3,
    };
    store.save(&service, &second).await.expect("saving again");
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
