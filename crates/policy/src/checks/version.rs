//! `version` is 1.
//!
//! Why: a file written for another version of the policy language must not be read with this
//! version's meaning.
//!
//! Example: `version: 2` is rejected with "unsupported policy language version 2".

use crate::raw::Spanned;
use crate::validate::Findings;

/// The policy language version this capstan reads.
const SUPPORTED: u32 = 1;

/// Records a problem unless `version` is [`SUPPORTED`].
pub(crate) fn check(version: &Spanned<u32>, out: &mut Findings<'_>) {
    if version.value != SUPPORTED {
        out.error_with_help(
            version.referenced,
            format!("unsupported policy language version {}", version.value),
            format!("this capstan reads `version: {SUPPORTED}`"),
        );
    }
}

#[cfg(test)]
mod tests {
    use crate::checks::testing::{EXAMPLE, errors, valid};

    #[test]
    fn version_one_is_accepted() {
        valid(EXAMPLE);
    }

    #[test]
    fn other_versions_are_rejected_at_the_value() {
        let errors = errors(&EXAMPLE.replace("version: 1", "version: 2"));
        assert_eq!(errors, ["2:10: unsupported policy language version 2"]);
    }
}
