//! The one error type of the crate: what was called, on which resource, what kind of failure it
//! was and whether trying again later can help.

use std::fmt;

use aws_runtime::retries::classifiers::{THROTTLING_ERRORS, TRANSIENT_ERRORS};
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::display::DisplayErrorContext;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;

/// What kind of failure an [`AwsError`] is, derived from the service's error code (or, when the
/// answer has none, its HTTP status).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// The resource does not exist (or no longer does).
    NotFound,
    /// The service refused the call for its rate; the SDK's retries were used up.
    Throttled,
    /// The credentials are missing, wrong, expired, or lack the permission.
    AccessDenied,
    /// The request was refused as invalid, by the service or by capstan before sending it.
    Invalid,
    /// The service failed or could not be reached (5xx, timeout, connection error).
    Unavailable,
    /// capstan cannot act on this kind of resource yet, or on a record a newer capstan wrote.
    Unsupported,
    /// The service answered, but capstan cannot use the answer: it could not be read (a
    /// truncated body, a member of the wrong type), it lacks a member capstan needs, or it
    /// contradicts itself (a desired capacity outside the resource's own bounds).
    Malformed,
    /// Anything else, e.g. a conflict with another change in progress.
    Other,
}

impl ErrorKind {
    /// Whether the same call can succeed later without anyone changing anything: true for
    /// throttling and unavailability, false otherwise.
    pub fn is_retryable(self) -> bool {
        matches!(self, Self::Throttled | Self::Unavailable)
    }

    /// The kind of an AWS error code. Throttling and transient codes are the ones the SDK's own
    /// retry classifier uses, so "retryable" here means what it means to the SDK.
    fn of_code(code: &str) -> Self {
        const ACCESS_DENIED: &[&str] = &[
            "AccessDenied",
            "AccessDeniedException",
            "AuthFailure",
            "ExpiredToken",
            "ExpiredTokenException",
            "IncompleteSignature",
            "InvalidClientTokenId",
            "InvalidSignatureException",
            "MissingAuthenticationToken",
            "SignatureDoesNotMatch",
            "UnauthorizedOperation",
            "UnrecognizedClientException",
        ];
        const UNAVAILABLE: &[&str] = &[
            "InternalError",
            "InternalFailure",
            "InternalServerError",
            "InternalServiceError",
            "InternalServiceFault",
            "ServerException",
            "ServiceUnavailable",
            "ServiceUnavailableException",
        ];
        if THROTTLING_ERRORS.contains(&code) {
            Self::Throttled
        } else if TRANSIENT_ERRORS.contains(&code) || UNAVAILABLE.contains(&code) {
            Self::Unavailable
        } else if ACCESS_DENIED.contains(&code) {
            Self::AccessDenied
        } else if code.ends_with("NotFoundException")
            || code.ends_with("NotFound")
            || code == "ServiceNotActiveException"
            // SQS, in its JSON protocol and in its older query-protocol spelling.
            || code == "QueueDoesNotExist"
            || code == "AWS.SimpleQueueService.NonExistentQueue"
        {
            Self::NotFound
        } else if code.starts_with("Invalid")
            || code.starts_with("Validation")
            || code.starts_with("MissingParameter")
            || code.starts_with("MissingRequiredParameter")
            || code == "ClientException"
        {
            Self::Invalid
        } else {
            Self::Other
        }
    }

    /// The kind of an error answer that carries no code.
    fn of_status(status: u16) -> Self {
        match status {
            403 => Self::AccessDenied,
            404 => Self::NotFound,
            429 => Self::Throttled,
            400..=499 => Self::Invalid,
            500..=599 => Self::Unavailable,
            _ => Self::Other,
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// A failed AWS call, or a call capstan refused to make.
///
/// Displays as `ecs:UpdateService on shop/order-processing failed: ServiceNotFoundException:
/// Service not found.`: the operation, the resource, the service's error code and its message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{operation} on {resource} failed: {code}: {message}")]
pub struct AwsError {
    operation: &'static str,
    resource: String,
    kind: ErrorKind,
    code: String,
    message: String,
}

impl AwsError {
    /// An error capstan raises itself; its code is the kind's name.
    pub(crate) fn new(
        operation: &'static str,
        resource: impl Into<String>,
        kind: ErrorKind,
        message: impl Into<String>,
    ) -> Self {
        Self {
            operation,
            resource: resource.into(),
            kind,
            code: kind.to_string(),
            message: message.into(),
        }
    }

    /// The failure of one entry of a batched call, as the service's answer names it with an
    /// error `code` and `message`: its kind is the code's.
    pub(crate) fn of_entry(
        operation: &'static str,
        resource: impl Into<String>,
        code: &str,
        message: impl Into<String>,
    ) -> Self {
        Self {
            operation,
            resource: resource.into(),
            kind: ErrorKind::of_code(code),
            code: code.to_owned(),
            message: message.into(),
        }
    }

    /// Converts the error of any SDK operation. A service's answer is classified by its error
    /// code, or by its HTTP status when it has none; a request that never got an answer
    /// (connection failure, timeout) is [`ErrorKind::Unavailable`]; an answer the SDK could not
    /// read is [`ErrorKind::Malformed`], its message saying why and what was received (see
    /// [`AwsError::malformed`]).
    pub(crate) fn from_sdk<E>(
        operation: &'static str,
        resource: impl Into<String>,
        error: SdkError<E, HttpResponse>,
    ) -> Self
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
    {
        let unreadable = match &error {
            SdkError::ResponseError(context) => Some(context.raw()),
            // Older protocols report an answer they could not read as a service error without
            // a code, on a successful status.
            SdkError::ServiceError(service)
                if error.code().is_none() && service.raw().status().is_success() =>
            {
                Some(service.raw())
            }
            _ => None,
        };
        if let Some(answer) = unreadable {
            let mut cause: &dyn std::error::Error = &error;
            while let Some(source) = cause.source() {
                cause = source;
            }
            return Self::malformed(
                operation,
                resource,
                format!(
                    "the answer could not be read: {cause}; {}",
                    received(answer)
                ),
            );
        }
        let (kind, code) = match (&error, error.code()) {
            (SdkError::ServiceError(_), Some(code)) => (ErrorKind::of_code(code), code.to_owned()),
            (SdkError::ServiceError(service), None) => {
                let status = service.raw().status().as_u16();
                (ErrorKind::of_status(status), format!("HTTP {status}"))
            }
            (SdkError::ConstructionFailure(_), _) => {
                (ErrorKind::Invalid, "ConstructionFailure".to_owned())
            }
            (SdkError::TimeoutError(_), _) => (ErrorKind::Unavailable, "TimeoutError".to_owned()),
            (SdkError::DispatchFailure(_), _) => {
                (ErrorKind::Unavailable, "DispatchFailure".to_owned())
            }
            (_, _) => (ErrorKind::Other, "Unknown".to_owned()),
        };
        let message = match error.message() {
            Some(message) => message.to_owned(),
            None => DisplayErrorContext(&error).to_string(),
        };
        Self {
            operation,
            resource: resource.into(),
            kind,
            code,
            message,
        }
    }

    /// An answer capstan cannot use ([`ErrorKind::Malformed`]): `problem` says what is wrong
    /// with it.
    pub(crate) fn malformed(
        operation: &'static str,
        resource: impl Into<String>,
        problem: impl Into<String>,
    ) -> Self {
        Self::new(operation, resource, ErrorKind::Malformed, problem)
    }

    /// The same failure, about `resource`: a batched call that failed as a whole is the error
    /// of each resource it asked about, each naming its own.
    pub(crate) fn about(&self, resource: impl Into<String>) -> Self {
        Self {
            resource: resource.into(),
            ..self.clone()
        }
    }

    /// The operation, as `service:Operation`, e.g. `ecs:UpdateService`.
    pub fn operation(&self) -> &'static str {
        self.operation
    }

    /// The resource the call concerned, e.g. `shop/order-processing` for an ECS service.
    pub fn resource(&self) -> &str {
        &self.resource
    }

    /// What kind of failure this is.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The service's error code (e.g. `ThrottlingException`), or the kind's name for an error
    /// capstan raised itself.
    pub fn code(&self) -> &str {
        &self.code
    }

    /// The service's (or capstan's) explanation.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// Whether trying again later can help; see [`ErrorKind::is_retryable`].
    pub fn is_retryable(&self) -> bool {
        self.kind.is_retryable()
    }
}

/// What an answer was, for an error about it: its status, size and content type, and the
/// beginning of its body when that is text.
pub(crate) fn received(answer: &HttpResponse) -> String {
    const SHOWN: usize = 100;
    let mut what = format!("received HTTP {}", answer.status());
    let Some(body) = answer.body().bytes() else {
        what.push_str(" whose body could not be read in full");
        return what;
    };
    what.push_str(&format!(" with {} bytes", body.len()));
    if let Some(kind) = answer.headers().get("content-type") {
        what.push_str(&format!(" of {kind}"));
    }
    if let Ok(text) = std::str::from_utf8(body)
        && !text.is_empty()
    {
        let shown: String = text
            .chars()
            .take(SHOWN)
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect();
        let more = if text.chars().count() > SHOWN {
            "..."
        } else {
            ""
        };
        what.push_str(&format!(": `{shown}{more}`"));
    }
    what
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_map_to_kinds() {
        let cases = [
            ("ThrottlingException", ErrorKind::Throttled),
            ("Throttling", ErrorKind::Throttled),
            ("RequestTimeout", ErrorKind::Unavailable),
            ("ServiceUnavailable", ErrorKind::Unavailable),
            ("ServerException", ErrorKind::Unavailable),
            ("AccessDeniedException", ErrorKind::AccessDenied),
            ("ExpiredToken", ErrorKind::AccessDenied),
            ("ServiceNotFoundException", ErrorKind::NotFound),
            ("ClusterNotFoundException", ErrorKind::NotFound),
            ("ResourceNotFoundException", ErrorKind::NotFound),
            ("ServiceNotActiveException", ErrorKind::NotFound),
            ("QueueDoesNotExist", ErrorKind::NotFound),
            (
                "AWS.SimpleQueueService.NonExistentQueue",
                ErrorKind::NotFound,
            ),
            ("ValidationError", ErrorKind::Invalid),
            ("InvalidParameterValue", ErrorKind::Invalid),
            ("ClientException", ErrorKind::Invalid),
            ("ScalingActivityInProgress", ErrorKind::Other),
        ];
        for (code, kind) in cases {
            assert_eq!(ErrorKind::of_code(code), kind, "{code}");
        }
    }

    #[test]
    fn only_throttling_and_unavailability_are_retryable() {
        assert!(ErrorKind::Throttled.is_retryable());
        assert!(ErrorKind::Unavailable.is_retryable());
        for kind in [
            ErrorKind::NotFound,
            ErrorKind::AccessDenied,
            ErrorKind::Invalid,
            ErrorKind::Unsupported,
            ErrorKind::Malformed,
        ] {
            assert!(!kind.is_retryable(), "{kind}");
        }
    }

    #[test]
    fn statuses_map_to_kinds_when_there_is_no_code() {
        assert_eq!(ErrorKind::of_status(503), ErrorKind::Unavailable);
        assert_eq!(ErrorKind::of_status(429), ErrorKind::Throttled);
        assert_eq!(ErrorKind::of_status(403), ErrorKind::AccessDenied);
        assert_eq!(ErrorKind::of_status(400), ErrorKind::Invalid);
    }

    #[test]
    fn capstan_errors_display_with_their_kind_as_code() {
        let error = AwsError::new(
            "autoscaling:SetDesiredCapacity",
            "web",
            ErrorKind::Invalid,
            "9 is above 5",
        );
        assert_eq!(
            error.to_string(),
            "autoscaling:SetDesiredCapacity on web failed: Invalid: 9 is above 5"
        );
        assert!(!error.is_retryable());
    }
}
