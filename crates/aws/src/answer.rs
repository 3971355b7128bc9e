//! Checks on AWS answers that the SDK's deserializers let through, run as interceptors on the
//! calls whose typed output would hide the problem: a member the SDK fills with a default when
//! it is missing ([`MissingMembers`]), and an XML document cut short ([`WholeDocument`]).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};

use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::interceptors::context::AfterDeserializationInterceptorContextRef;
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;

/// The body of a successful answer the SDK has read without error, if it is in memory: what
/// the checks look at. An answer the SDK could not read fails on its own.
fn read_body<'a>(context: &'a AfterDeserializationInterceptorContextRef<'_>) -> Option<&'a [u8]> {
    let answer: &HttpResponse = context.response();
    let read = context.output_or_error().is_ok();
    (read && answer.status().is_success())
        .then(|| answer.body().bytes())
        .flatten()
}

/// Finds, in a JSON answer, the objects of the list `list` that lack a number in any of the
/// members `required`, by the value of their member `name`. Installed on one call
/// (`customize().interceptor(...)`), it is read once the call has answered: the Rust SDK reads a
/// missing integer member such as an ECS service's `desiredCount` as 0, which capstan must not
/// take for a count AWS reported.
#[derive(Debug, Clone)]
pub(crate) struct MissingMembers {
    list: &'static str,
    name: &'static str,
    required: &'static [&'static str],
    found: Arc<Mutex<BTreeMap<String, Vec<&'static str>>>>,
}

impl MissingMembers {
    /// A check of the objects of `list`, named by their member `name`, for `required`.
    pub(crate) fn new(
        list: &'static str,
        name: &'static str,
        required: &'static [&'static str],
    ) -> Self {
        Self {
            list,
            name,
            required,
            found: Arc::default(),
        }
    }

    /// The objects of the last answer read that lack required members, by name, with the
    /// members each lacks.
    pub(crate) fn found(&self) -> BTreeMap<String, Vec<&'static str>> {
        self.found
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// The objects of `body`'s list that lack required members.
    fn check(&self, body: &[u8]) -> BTreeMap<String, Vec<&'static str>> {
        let Ok(answer) = serde_json::from_slice::<serde_json::Value>(body) else {
            return BTreeMap::new();
        };
        let objects = answer[self.list].as_array().map_or(&[][..], Vec::as_slice);
        objects
            .iter()
            .filter_map(|object| {
                let missing: Vec<&'static str> = self
                    .required
                    .iter()
                    .copied()
                    .filter(|member| !object[*member].is_number())
                    .collect();
                let name = object[self.name].as_str()?;
                (!missing.is_empty()).then(|| (name.to_owned(), missing))
            })
            .collect()
    }
}

impl Intercept for MissingMembers {
    fn name(&self) -> &'static str {
        "MissingMembers"
    }

    fn read_after_deserialization(
        &self,
        context: &AfterDeserializationInterceptorContextRef<'_>,
        _components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        // Each attempt's answer replaces the last: the output comes from the last one.
        let found = read_body(context)
            .map(|body| self.check(body))
            .unwrap_or_default();
        *self.found.lock().unwrap_or_else(PoisonError::into_inner) = found;
        Ok(())
    }
}

/// Refuses an XML answer that ends before its document does. The SDK's XML reader takes a
/// document cut short for a complete one with fewer members (a `DescribeAutoScalingGroups`
/// answer cut inside its list reads as fewer groups, and the missing ones as not found); this
/// fails such an answer as unreadable, and the call then fails as
/// [`ErrorKind::Malformed`](crate::ErrorKind::Malformed). Installed on a client's
/// configuration, so that it checks every call of the adapter holding the client.
#[derive(Debug, Clone, Copy)]
pub(crate) struct WholeDocument;

impl Intercept for WholeDocument {
    fn name(&self) -> &'static str {
        "WholeDocument"
    }

    fn read_after_deserialization(
        &self,
        context: &AfterDeserializationInterceptorContextRef<'_>,
        _components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        match read_body(context) {
            Some(body) => whole_document(body).map_err(BoxError::from),
            None => Ok(()),
        }
    }
}

/// Whether `body` is a whole XML document: its root element is closed at its end. Says what
/// is wrong when it is not.
fn whole_document(body: &[u8]) -> Result<(), String> {
    let text = std::str::from_utf8(body).map_err(|_| "the XML document is not UTF-8")?;
    let start = text
        .match_indices('<')
        .map(|(at, _)| at + 1)
        .find(|&at| text[at..].starts_with(|c: char| c.is_alphabetic() || c == '_'))
        .ok_or("the answer holds no XML element")?;
    let tag = &text[start..];
    let name_end = tag
        .find(|c: char| c.is_whitespace() || c == '>' || c == '/')
        .unwrap_or(tag.len());
    let root = &tag[..name_end];
    let end = text.trim_end();
    let self_closed = tag
        .find('>')
        .is_some_and(|close| tag[..close].ends_with('/') && start + close + 1 == end.len());
    if end.ends_with(&format!("</{root}>")) || self_closed {
        Ok(())
    } else {
        Err(format!(
            "the XML document ends before the end tag of its root element `{root}`: the body was cut short"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_document_is_whole_when_its_root_element_is_closed_at_its_end() {
        let whole = r#"<?xml version="1.0"?>
<!-- a comment --><Answer xmlns="x"><List><member><Name>web</Name></member></List></Answer>
"#;
        assert_eq!(whole_document(whole.as_bytes()), Ok(()));
        assert_eq!(whole_document(b"<Empty/>"), Ok(()));
        for cut in [whole.len() - 4, 80, 50] {
            assert_eq!(
                whole_document(&whole.as_bytes()[..cut]),
                Err("the XML document ends before the end tag of its root element `Answer`: the body was cut short".into()),
                "cut at {cut}"
            );
        }
        assert_eq!(
            whole_document(b"<Answer><Inner/>"),
            Err("the XML document ends before the end tag of its root element `Answer`: the body was cut short".into())
        );
        assert_eq!(
            whole_document(b""),
            Err("the answer holds no XML element".into())
        );
        assert_eq!(
            whole_document(&[0x3c, 0xff, 0xfe]),
            Err("the XML document is not UTF-8".into())
        );
    }

    #[test]
    fn objects_lacking_a_required_number_are_found_by_name() {
        let check =
            MissingMembers::new("services", "serviceName", &["desiredCount", "runningCount"]);
        let answer = br#"{"services": [
            {"serviceName": "web", "desiredCount": 2, "runningCount": 2},
            {"serviceName": "api", "runningCount": 1},
            {"serviceName": "jobs", "desiredCount": null, "runningCount": "1"}
        ]}"#;
        assert_eq!(
            check.check(answer),
            BTreeMap::from([
                ("api".to_owned(), vec!["desiredCount"]),
                ("jobs".to_owned(), vec!["desiredCount", "runningCount"]),
            ])
        );
        assert_eq!(check.check(b"{\"services\": []}"), BTreeMap::new());
        assert_eq!(check.check(b"not JSON"), BTreeMap::new());
    }
}
