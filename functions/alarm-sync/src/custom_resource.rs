//! The CloudFormation custom resource `Custom::CapstanAlarmSync`: the request in, the sync or the
//! deletion, and the answer PUT to the request's presigned `ResponseURL`.
//!
//! The physical resource id is `capstan-alarms-<namespace>` ([`physical_id`]). An Update that
//! changes `AlarmPrefix` therefore gets a new id, and CloudFormation then sends a Delete for the
//! old one, which deletes the stack's alarms under the old prefix. A Delete acts only when its
//! id is the one of the namespace its properties name: a resource whose id names another one
//! (made before alarms carried their stack, `capstan-alarms-<prefix>`) deletes nothing, since
//! its alarms could be any stack's; they are left for the operator (docs/alarms.md).

use std::collections::HashMap;

use aws_lambda_events::cloudformation::{
    CloudFormationCustomResourceRequest as Request,
    CloudFormationCustomResourceResponse as Response,
    CloudFormationCustomResourceResponseStatus as Status,
};
use http_body_util::Full;
use hyper::body::Bytes;
use hyper::header::{CONTENT_LENGTH, CONTENT_TYPE};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde::Deserialize;
use serde_json::{Value, json};

use capstan_aws::CloudWatchAlarms;
use capstan_engine::alarms::AlarmNamespace;

use crate::App;

/// Most characters of a `FAILED` reason: the whole answer must stay within the 4 KiB that
/// CloudFormation accepts.
const MAX_REASON_CHARS: usize = 1000;

/// The resource's properties; others (such as `ServiceToken`) are ignored.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Properties {
    /// The alarm name prefix; the function's `CAPSTAN_ALARM_PREFIX` when absent or empty.
    #[serde(default)]
    alarm_prefix: Option<String>,
    /// Changes whenever the policies do, so that CloudFormation sends an Update; only logged.
    #[serde(default)]
    policy_set_hash: Option<String>,
}

/// What the answer is made of, taken from whichever kind of request came.
struct Received {
    kind: &'static str,
    response_url: String,
    stack_id: String,
    request_id: String,
    logical_resource_id: String,
    physical_resource_id: Option<String>,
    properties: Value,
}

/// Handles one custom resource request and answers CloudFormation. Only a request that cannot
/// be answered (it does not parse, so there is no `ResponseURL`) or an answer that cannot be
/// delivered is an error of the invocation; Lambda then retries it.
pub(crate) async fn handle(
    app: &App,
    cloudwatch: &CloudWatchAlarms,
    event: Value,
) -> Result<Value, lambda_runtime::Error> {
    let request: Request = serde_json::from_value(event).map_err(|error| {
        tracing::error!(%error, "malformed custom resource request: cannot answer it");
        format!("malformed custom resource request: {error}")
    })?;
    let received = Received::from(request)?;
    let properties: Result<Properties, String> =
        serde_json::from_value(received.properties.clone())
            .map_err(|error| format!("invalid ResourceProperties: {error}"));
    let prefix = properties
        .as_ref()
        .ok()
        .and_then(|properties| properties.alarm_prefix.clone())
        .filter(|prefix| !prefix.is_empty())
        .unwrap_or_else(|| app.prefix.clone());
    tracing::info!(
        request = received.kind,
        %prefix,
        policy_set_hash = properties.as_ref().ok().and_then(|p| p.policy_set_hash.as_deref()),
        "custom resource request"
    );
    let namespace = app.namespace(&prefix);
    let outcome = match (received.kind, properties, &namespace) {
        // A Create or Update with these properties changed nothing, so neither does its Delete.
        ("Delete", Err(_), _) | ("Delete", _, Err(_)) => Ok(None),
        ("Delete", Ok(_), Ok(namespace))
            if received.physical_resource_id.as_deref()
                != Some(physical_id(namespace).as_str()) =>
        {
            tracing::warn!(
                physical_resource_id = received.physical_resource_id.as_deref(),
                %namespace,
                "a Delete for a resource that did not make this namespace's alarms: nothing deleted, its alarms are left for the operator"
            );
            Ok(None)
        }
        ("Delete", Ok(_), Ok(namespace)) => {
            crate::delete_all(cloudwatch, namespace).await.map(Some)
        }
        (_, Err(reason), _) => Err(reason),
        (_, _, Err(reason)) => Err(reason.clone()),
        (_, Ok(_), Ok(namespace)) => crate::sync(cloudwatch, &app.policies, namespace)
            .await
            .map(Some),
    };

    let mut response = Response::default();
    response.physical_resource_id = match (received.kind, &namespace) {
        ("Delete", _) => received.physical_resource_id.unwrap_or_default(),
        (_, Ok(namespace)) => physical_id(namespace),
        (_, Err(_)) => format!("capstan-alarms-{prefix}"),
    };
    response.stack_id = received.stack_id;
    response.request_id = received.request_id;
    response.logical_resource_id = received.logical_resource_id;
    let summary = match &outcome {
        Ok(plan) => {
            response.status = Status::Success;
            if let Some(plan) = plan {
                response.data = HashMap::from([
                    ("Created".to_owned(), plan.create.len().to_string()),
                    ("Changed".to_owned(), plan.change.len().to_string()),
                    ("Deleted".to_owned(), plan.delete.len().to_string()),
                ]);
            }
            plan.as_ref().map_or(Value::Null, crate::summary)
        }
        Err(reason) => {
            tracing::error!(%reason, request = received.kind, "alarm sync failed: answering FAILED");
            response.status = Status::Failed;
            response.reason = Some(reason.chars().take(MAX_REASON_CHARS).collect());
            Value::Null
        }
    };
    app.responder
        .send(&received.response_url, &response)
        .await?;
    Ok(json!({
        "request": received.kind,
        "status": response.status,
        "reason": response.reason,
        "physical_resource_id": response.physical_resource_id,
        "sync": summary,
    }))
}

/// The physical resource id of the custom resource that keeps `namespace`'s alarms.
pub fn physical_id(namespace: &AlarmNamespace) -> String {
    format!("capstan-alarms-{namespace}")
}

impl Received {
    fn from(request: Request) -> Result<Self, String> {
        Ok(match request {
            Request::Create(r) => Self {
                kind: "Create",
                response_url: r.response_url,
                stack_id: r.stack_id,
                request_id: r.request_id,
                logical_resource_id: r.logical_resource_id,
                physical_resource_id: None,
                properties: r.resource_properties,
            },
            Request::Update(r) => Self {
                kind: "Update",
                response_url: r.response_url,
                stack_id: r.stack_id,
                request_id: r.request_id,
                logical_resource_id: r.logical_resource_id,
                physical_resource_id: Some(r.physical_resource_id),
                properties: r.resource_properties,
            },
            Request::Delete(r) => Self {
                kind: "Delete",
                response_url: r.response_url,
                stack_id: r.stack_id,
                request_id: r.request_id,
                logical_resource_id: r.logical_resource_id,
                physical_resource_id: Some(r.physical_resource_id),
                properties: r.resource_properties,
            },
            other => return Err(format!("unsupported custom resource request: {other:?}")),
        })
    }
}

/// Delivers answers to CloudFormation: an HTTP PUT of the JSON answer to the request's
/// presigned S3 `ResponseURL` (a plain upload, not an AWS API call), over HTTPS with the
/// system's root certificates (plain HTTP is accepted too, for local tests).
#[derive(Debug, Clone)]
pub struct Responder {
    client: Client<HttpsConnector<HttpConnector>, Full<Bytes>>,
}

impl Responder {
    /// A client with the system's root certificates.
    pub fn new() -> std::io::Result<Self> {
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_native_roots()?
            .https_or_http()
            .enable_http1()
            .build();
        Ok(Self {
            client: Client::builder(TokioExecutor::new()).build(https),
        })
    }

    /// PUTs `response` to `url`. The URL is presigned, so it is never logged.
    async fn send(&self, url: &str, response: &Response) -> Result<(), String> {
        let body = serde_json::to_vec(response).map_err(|error| error.to_string())?;
        let request = hyper::Request::put(url)
            // The presigned URL was signed for an empty content type.
            .header(CONTENT_TYPE, "")
            .header(CONTENT_LENGTH, body.len())
            .body(Full::new(Bytes::from(body)))
            .map_err(|error| format!("invalid ResponseURL: {error}"))?;
        let answer = self
            .client
            .request(request)
            .await
            .map_err(|error| format!("answering CloudFormation failed: {error}"))?;
        if answer.status().is_success() {
            Ok(())
        } else {
            Err(format!(
                "answering CloudFormation failed: the ResponseURL answered {}",
                answer.status()
            ))
        }
    }
}
