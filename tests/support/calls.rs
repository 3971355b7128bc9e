//! Counting the AWS calls a client makes, by operation.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::interceptors::context::BeforeSerializationInterceptorContextRef;
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;

/// Counts the operations called through the clients it is installed on (`interceptor(calls)`
/// on a client's configuration builder): one per execution of an operation, so each page of a
/// paginated call and each new request for an unprocessed part is one, and the SDK's own retry
/// attempts are not. The operation is named by the metadata its configuration holds once the
/// execution reaches serialization.
#[derive(Debug, Clone, Default)]
pub struct Calls(Arc<Mutex<BTreeMap<String, usize>>>);

impl Calls {
    /// The calls counted since the last `take`, by operation name (`DescribeServices`).
    pub fn take(&self) -> BTreeMap<String, usize> {
        std::mem::take(&mut *self.0.lock().expect("not poisoned"))
    }
}

impl Intercept for Calls {
    fn name(&self) -> &'static str {
        "Calls"
    }

    fn read_before_serialization(
        &self,
        _context: &BeforeSerializationInterceptorContextRef<'_>,
        _components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let name = cfg
            .load::<Metadata>()
            .map_or("unknown operation", Metadata::name)
            .to_owned();
        *self
            .0
            .lock()
            .expect("not poisoned")
            .entry(name)
            .or_default() += 1;
        Ok(())
    }
}

/// `[(operation, count)]` as the map [`Calls::take`] answers.
pub fn counts<const N: usize>(calls: [(&str, usize); N]) -> BTreeMap<String, usize> {
    calls
        .into_iter()
        .map(|(name, count)| (name.to_owned(), count))
        .collect()
}
