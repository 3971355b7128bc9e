//! Malformed answers from the emulator: an HTTP client for the SDK that sends every request on
//! to the emulator and rewrites the answers to the calls a test names, before the SDK's own
//! deserializers read them. No emulator answers an ECS service without its `desiredCount` or
//! cuts its answers short; this is how a test gets those answers on the wire, while everything
//! else it reads and changes is the emulator's.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use aws_config::SdkConfig;
use aws_smithy_http_client::tls;
use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpClient,
    SharedHttpConnector,
};
use aws_smithy_runtime_api::client::orchestrator::HttpRequest;
use aws_smithy_runtime_api::client::result::ConnectorError;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::body::SdkBody;
use aws_smithy_types::byte_stream::ByteStream;

/// How one answer is rewritten: its body in, the body the SDK reads out.
type Rewrite = dyn Fn(&[u8]) -> Vec<u8> + Send + Sync;

/// Rewrites the answers to one operation whose request bodies hold a given text, counting them.
#[derive(Clone)]
pub struct Tamper {
    operation: &'static str,
    asked: String,
    rewrite: Arc<Rewrite>,
    rewritten: Arc<AtomicUsize>,
}

impl fmt::Debug for Tamper {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tamper")
            .field("operation", &self.operation)
            .field("asked", &self.asked)
            .finish_non_exhaustive()
    }
}

impl Tamper {
    /// Rewrites, with `rewrite`, the answer to every call of `operation` (`DescribeServices`)
    /// whose request body holds `asked` (a resource's name, say; `""` for every call).
    pub fn new(
        operation: &'static str,
        asked: &str,
        rewrite: impl Fn(&[u8]) -> Vec<u8> + Send + Sync + 'static,
    ) -> Self {
        Self {
            operation,
            asked: asked.to_owned(),
            rewrite: Arc::new(rewrite),
            rewritten: Arc::default(),
        }
    }

    /// Cuts the answer to `operation` short, to half its length, where `asked`.
    pub fn truncate(operation: &'static str, asked: &str) -> Self {
        Self::new(operation, asked, |body| body[..body.len() / 2].to_vec())
    }

    /// Replaces `from` with `to` in the answer to `operation`, where `asked`.
    pub fn replace(operation: &'static str, asked: &str, from: &str, to: &str) -> Self {
        let (from, to) = (from.to_owned(), to.to_owned());
        Self::new(operation, asked, move |body| {
            String::from_utf8_lossy(body)
                .replace(&from, &to)
                .into_bytes()
        })
    }

    /// How many answers it rewrote: a test checks that its malformed answer was given.
    pub fn rewritten(&self) -> usize {
        self.rewritten.load(Ordering::SeqCst)
    }

    /// Whether it rewrites the answer to `request`.
    fn applies(&self, request: &HttpRequest) -> bool {
        let body = request
            .body()
            .bytes()
            .map(String::from_utf8_lossy)
            .unwrap_or_default();
        operation(request, &body) == Some(self.operation) && body.contains(&self.asked)
    }
}

/// The operation a request calls: the `X-Amz-Target` header of the JSON protocols (ECS,
/// DynamoDB), the path of Smithy RPC v2 CBOR (CloudWatch), the `Action` field of the query
/// protocol's form body (Auto Scaling, RDS).
fn operation<'a>(request: &'a HttpRequest, body: &'a str) -> Option<&'a str> {
    if let Some(target) = request.headers().get("x-amz-target") {
        return target.rsplit('.').next();
    }
    if let Some((_, name)) = request.uri().split_once("/operation/") {
        return Some(name);
    }
    body.split('&')
        .find_map(|field| field.strip_prefix("Action="))
}

/// `config` reaching the emulator through an HTTP client that applies `tampers`.
pub fn tampered(config: &SdkConfig, tampers: &[&Tamper]) -> SdkConfig {
    let inner = aws_smithy_http_client::Builder::new()
        .tls_provider(tls::Provider::Rustls(
            tls::rustls_provider::CryptoMode::AwsLc,
        ))
        .build_https();
    let client = Tampering {
        inner,
        tampers: tampers.iter().map(|tamper| (*tamper).clone()).collect(),
    };
    config.to_builder().http_client(client).build()
}

/// The HTTP client of [`tampered`].
#[derive(Debug, Clone)]
struct Tampering {
    inner: SharedHttpClient,
    tampers: Vec<Tamper>,
}

impl HttpClient for Tampering {
    fn http_connector(
        &self,
        settings: &HttpConnectorSettings,
        components: &RuntimeComponents,
    ) -> SharedHttpConnector {
        SharedHttpConnector::new(TamperingConnector {
            inner: self.inner.http_connector(settings, components),
            tampers: self.tampers.clone(),
        })
    }
}

#[derive(Debug)]
struct TamperingConnector {
    inner: SharedHttpConnector,
    tampers: Vec<Tamper>,
}

impl HttpConnector for TamperingConnector {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        let tamper = self
            .tampers
            .iter()
            .find(|tamper| tamper.applies(&request))
            .cloned();
        let answer = self.inner.call(request);
        HttpConnectorFuture::new(async move {
            let mut answer = answer.await?;
            let Some(tamper) = tamper else {
                return Ok(answer);
            };
            let body = ByteStream::new(answer.take_body())
                .collect()
                .await
                .map_err(|error| ConnectorError::io(error.into()))?
                .into_bytes();
            let body = (tamper.rewrite)(&body);
            tamper.rewritten.fetch_add(1, Ordering::SeqCst);
            answer
                .headers_mut()
                .insert("content-length", body.len().to_string());
            *answer.body_mut() = SdkBody::from(body);
            Ok(answer)
        })
    }
}
