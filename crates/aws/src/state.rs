//! What capstan remembers between evaluations, in one DynamoDB table.
//!
//! # Key scheme
//!
//! Every item has a string partition key `pk` and a string sort key `sk`. The partition key says
//! what the item is about, as `<subject>#...`; the sort key says which record about it this is.
//! Today there is one kind of item:
//!
//! | Item | `pk` | `sk` | Other attributes |
//! |---|---|---|---|
//! | a resource's state | `resource#<kind>#<identity>` | `state` | `memory`: the engine's [`ResourceState`] as JSON (recent actions, recommendations, evaluations without data); `updated_at` (RFC 3339) |
//!
//! `<kind>` is the target kind as written in policies (`ecs_service`) and `<identity>` its name
//! (`shop/order-processing` for an ECS service, the group's name for an Auto Scaling group).
//! Later records fit the same scheme without a new table: records about a resource (a lease, a
//! decision log entry per time) take other sort keys under the resource's partition key, and
//! records about something else (an idempotency key) take another subject.
//!
//! The state is written with `UpdateItem`, so attributes that later records add to the same item
//! survive, and read with strongly consistent reads, so an evaluation sees what the previous one
//! just wrote.

use std::collections::HashMap;
use std::time::Duration;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::client::Waiters;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, KeySchemaElement, KeyType,
    ScalarAttributeType,
};
use aws_smithy_types::error::display::DisplayErrorContext;
use chrono::Utc;

use capstan_engine::ResourceState;
use capstan_engine::model::Target;
use capstan_engine::ports::StateStore;

use crate::error::{AwsError, ErrorKind};

const PARTITION_KEY: &str = "pk";
const SORT_KEY: &str = "sk";
const STATE_RECORD: &str = "state";
/// The attribute holding the serialized [`ResourceState`].
const MEMORY: &str = "memory";

/// How long [`create_table`] waits for the new table to become active.
const TABLE_ACTIVE_WAIT: Duration = Duration::from_secs(120);

/// Resource state in a DynamoDB table laid out as described in the [module docs](self).
#[derive(Debug, Clone)]
pub struct DynamoStateStore {
    client: Client,
    table: String,
}

impl DynamoStateStore {
    /// A store on the named table, which must exist (see [`create_table`]).
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }

    /// The table's name.
    pub fn table(&self) -> &str {
        &self.table
    }

    /// The key of a target's state item, and how errors name the item: `<table>/<pk>`.
    fn state_key(&self, target: &Target) -> (HashMap<String, AttributeValue>, String) {
        let partition = format!("resource#{}#{}", target.kind(), crate::resource_id(target));
        let item = format!("{}/{partition}", self.table);
        let key = HashMap::from([
            (PARTITION_KEY.to_owned(), AttributeValue::S(partition)),
            (
                SORT_KEY.to_owned(),
                AttributeValue::S(STATE_RECORD.to_owned()),
            ),
        ]);
        (key, item)
    }
}

impl StateStore for DynamoStateStore {
    type Error = AwsError;

    async fn load(&self, target: &Target) -> Result<ResourceState, AwsError> {
        const OPERATION: &str = "dynamodb:GetItem";
        let (key, item_name) = self.state_key(target);
        let answer = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key))
            .consistent_read(true)
            .send()
            .await
            .map_err(|error| AwsError::from_sdk(OPERATION, &item_name, error))?;
        match answer.item() {
            None => Ok(ResourceState::default()),
            Some(item) => decode(item).map_err(|problem| {
                AwsError::new(
                    OPERATION,
                    item_name,
                    ErrorKind::Invalid,
                    format!("the stored state is malformed: {problem}"),
                )
            }),
        }
    }

    async fn save(&self, target: &Target, state: &ResourceState) -> Result<(), AwsError> {
        const OPERATION: &str = "dynamodb:UpdateItem";
        let (key, item_name) = self.state_key(target);
        let memory = serde_json::to_string(state).map_err(|error| {
            AwsError::new(OPERATION, &item_name, ErrorKind::Invalid, error.to_string())
        })?;
        self.client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key))
            .update_expression(format!("SET {MEMORY} = :memory, updated_at = :now"))
            .expression_attribute_values(":memory", AttributeValue::S(memory))
            .expression_attribute_values(":now", AttributeValue::S(Utc::now().to_rfc3339()))
            .send()
            .await
            .map_err(|error| AwsError::from_sdk(OPERATION, item_name, error))?;
        Ok(())
    }
}

/// Creates the state table (on-demand billing, keys as in the [module docs](self)) and waits
/// until it is active.
pub async fn create_table(client: &Client, name: &str) -> Result<(), AwsError> {
    const OPERATION: &str = "dynamodb:CreateTable";
    let key = |attribute: &str, key_type: KeyType| {
        KeySchemaElement::builder()
            .attribute_name(attribute)
            .key_type(key_type)
            .build()
    };
    let string_attribute = |attribute: &str| {
        AttributeDefinition::builder()
            .attribute_name(attribute)
            .attribute_type(ScalarAttributeType::S)
            .build()
    };
    let invalid = |error: aws_sdk_dynamodb::error::BuildError| {
        AwsError::new(OPERATION, name, ErrorKind::Invalid, error.to_string())
    };
    client
        .create_table()
        .table_name(name)
        .billing_mode(BillingMode::PayPerRequest)
        .key_schema(key(PARTITION_KEY, KeyType::Hash).map_err(invalid)?)
        .key_schema(key(SORT_KEY, KeyType::Range).map_err(invalid)?)
        .attribute_definitions(string_attribute(PARTITION_KEY).map_err(invalid)?)
        .attribute_definitions(string_attribute(SORT_KEY).map_err(invalid)?)
        .send()
        .await
        .map_err(|error| AwsError::from_sdk(OPERATION, name, error))?;
    client
        .wait_until_table_exists()
        .table_name(name)
        .wait(TABLE_ACTIVE_WAIT)
        .await
        .map_err(|error| {
            use aws_smithy_runtime_api::client::waiters::error::WaiterError;
            const WAIT: &str = "dynamodb:DescribeTable";
            match error {
                WaiterError::OperationFailed(failed) => {
                    AwsError::from_sdk(WAIT, name, failed.into_error())
                }
                other => AwsError::new(
                    WAIT,
                    name,
                    ErrorKind::Unavailable,
                    DisplayErrorContext(&other).to_string(),
                ),
            }
        })?;
    Ok(())
}

/// The state an item records; an item without `memory` is the default state.
fn decode(item: &HashMap<String, AttributeValue>) -> Result<ResourceState, String> {
    let Some(memory) = item.get(MEMORY) else {
        return Ok(ResourceState::default());
    };
    let json = memory
        .as_s()
        .map_err(|_| format!("attribute `{MEMORY}` is not a string"))?;
    serde_json::from_str(json).map_err(|error| format!("attribute `{MEMORY}`: {error}"))
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use capstan_engine::{Direction, LastAction, Recommendation};

    use super::*;

    fn state() -> ResourceState {
        let at = Utc
            .with_ymd_and_hms(2025, 3, 1, 12, 30, 5)
            .single()
            .unwrap_or_default();
        ResourceState {
            actions: vec![LastAction {
                at,
                direction: Direction::In,
                from: 6,
                to: 4,
            }],
            recommendations: vec![Recommendation { at, capacity: 4 }],
            evaluations_without_data: 2,
        }
    }

    #[test]
    fn a_state_survives_encoding() {
        let json = serde_json::to_string(&state()).unwrap();
        let item = HashMap::from([(MEMORY.to_owned(), AttributeValue::S(json))]);
        assert_eq!(decode(&item), Ok(state()));
    }

    #[test]
    fn an_item_without_memory_is_the_default_state() {
        assert_eq!(decode(&HashMap::new()), Ok(ResourceState::default()));
    }

    #[test]
    fn a_malformed_item_is_reported() {
        let item = HashMap::from([(MEMORY.to_owned(), AttributeValue::N("4".into()))]);
        assert_eq!(
            decode(&item),
            Err("attribute `memory` is not a string".into())
        );
        let item = HashMap::from([(
            MEMORY.to_owned(),
            AttributeValue::S("{\"actions\": 4}".into()),
        )]);
        let error = decode(&item).unwrap_err();
        assert!(
            error.starts_with("attribute `memory`: invalid type: integer `4`"),
            "{error}"
        );
    }

    #[test]
    fn the_key_names_the_kind_and_the_resource() {
        let target = Target::EcsService {
            cluster: "shop".into(),
            service: "order-processing".into(),
        };
        let store = DynamoStateStore::new(
            Client::from_conf(
                aws_sdk_dynamodb::Config::builder()
                    .behavior_version(aws_sdk_dynamodb::config::BehaviorVersion::latest())
                    .build(),
            ),
            "capstan",
        );
        let (key, item_name) = store.state_key(&target);
        assert_eq!(
            key[PARTITION_KEY],
            AttributeValue::S("resource#ecs_service#shop/order-processing".into())
        );
        assert_eq!(key[SORT_KEY], AttributeValue::S("state".into()));
        assert_eq!(
            item_name,
            "capstan/resource#ecs_service#shop/order-processing"
        );
    }
}
