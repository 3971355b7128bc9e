//! Reading one policy file into [`raw::PolicyFile`]. A file that does not parse is one
//! problem: YAML syntax, an unknown key, a wrong type or a bad value (durations, cron
//! expressions, time zones, ... check themselves while being read), at its line and column.

use serde_saphyr::budget::BudgetBreach;
use serde_saphyr::{Error, MessageFormatter, UserMessageFormatter};

use crate::report::Diagnostic;
use crate::{Source, limits, raw, suggest};

/// The file's contents, or the one problem that stopped the parser. A file past the
/// [`limits`] is refused before or while it is parsed.
pub(crate) fn parse(source: &Source) -> Result<raw::PolicyFile, Diagnostic> {
    let bytes = source.text.len() as u64;
    if bytes > limits::MAX_FILE_BYTES {
        return Err(limits::file_too_large(source.path.clone(), bytes));
    }
    let options = serde_saphyr::options! {
        with_snippet: false,
        budget: serde_saphyr::budget! {
            max_nodes: limits::MAX_YAML_NODES,
            max_depth: limits::MAX_YAML_DEPTH,
        },
    };
    serde_saphyr::from_str_with_options(&source.text, options)
        .map_err(|error| diagnostic(source, &error))
}

/// Turns a parser error into a diagnostic worded for policy authors.
fn diagnostic(source: &Source, error: &Error) -> Diagnostic {
    let error = original(error);
    let at = error.location().unwrap_or(serde_saphyr::Location::UNKNOWN);
    let problem = |message: String| Diagnostic::new(source, at, message);
    match error {
        Error::SerdeUnknownField {
            field, expected, ..
        } => problem(format!("unknown key `{field}`")).with_help(did_you_mean(field, expected)),
        Error::SerdeUnknownVariant {
            variant, expected, ..
        } => {
            problem(format!("unknown value `{variant}`")).with_help(did_you_mean(variant, expected))
        }
        Error::SerdeMissingField { field, .. } => problem(format!("missing key `{field}`")),
        Error::DuplicateMappingKey { key: Some(key), .. } => {
            problem(format!("duplicate key `{key}`"))
        }
        Error::InvalidScalar { ty, .. } => {
            problem(format!("invalid value: expected {}", describe(ty)))
        }
        Error::Budget {
            breach: BudgetBreach::Nodes { .. },
            ..
        } => problem(format!(
            "more than {} YAML values, lists and mappings (an alias counts again at each use): a policy file is far smaller",
            limits::MAX_YAML_NODES
        )),
        Error::Budget {
            breach: BudgetBreach::Depth { .. },
            ..
        } => problem(format!(
            "lists and mappings nested more than {} deep: a policy nests a few levels",
            limits::MAX_YAML_DEPTH
        )),
        other => problem(UserMessageFormatter.format_message(other).into_owned()),
    }
}

/// The error itself, without the wrappers that add snippets or alias locations.
fn original(mut error: &Error) -> &Error {
    loop {
        error = match error {
            Error::WithSnippet { error, .. } | Error::AliasError { error, .. } => error,
            other => return other,
        }
    }
}

/// The closest valid word if one is near, else the list of valid words.
fn did_you_mean(word: &str, expected: &[&str]) -> String {
    match suggest::closest(word, expected.iter().copied()) {
        Some(closest) => format!("did you mean `{closest}`?"),
        None => format!(
            "expected one of {}",
            expected
                .iter()
                .map(|e| format!("`{e}`"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// A Rust scalar type as a policy author would say it.
fn describe(ty: &str) -> &str {
    match ty {
        "u32" => "a whole number from 0 to 4294967295",
        "f32" | "f64" | "floating point" => "a finite number",
        "bool" => "`true` or `false`",
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error_in(text: &str) -> Diagnostic {
        let source = Source {
            path: "p.yaml".into(),
            text: text.into(),
        };
        match parse(&source) {
            Ok(_) => panic!("{text:?} should not parse"),
            Err(diagnostic) => diagnostic,
        }
    }

    const HEAD: &str = "version: 1\nname: a\ntarget: { ecs_service: { cluster: c, service: s } }\n";

    #[test]
    fn unknown_key_points_at_the_key_and_suggests_the_closest() {
        let d = error_in(&format!(
            "{HEAD}capacity: {{ min: 1, max: 2 }}\nscale_ot: []\n"
        ));
        assert_eq!(
            (d.line, d.column, d.message.as_str()),
            (5, 1, "unknown key `scale_ot`")
        );
        assert_eq!(d.help.as_deref(), Some("did you mean `scale_out`?"));
        assert_eq!(d.source_line, "scale_ot: []");
    }

    #[test]
    fn unknown_key_far_from_any_lists_the_valid_keys() {
        let d = error_in(&format!(
            "{HEAD}capacity: {{ min: 1, max: 2, maximum_capacity: 3 }}\n"
        ));
        assert_eq!(d.message, "unknown key `maximum_capacity`");
        assert_eq!(d.help.as_deref(), Some("expected one of `min`, `max`"));
    }

    #[test]
    fn unknown_target_kind_suggests_the_closest() {
        let d =
            error_in("version: 1\nname: a\ntarget:\n  ecs_servce: { cluster: c, service: s }\n");
        assert_eq!((d.line, d.column), (4, 3));
        assert_eq!(d.message, "unknown value `ecs_servce`");
        assert_eq!(d.help.as_deref(), Some("did you mean `ecs_service`?"));
    }

    #[test]
    fn wrong_type_names_the_expected_type() {
        let d = error_in("version: one\n");
        assert_eq!((d.line, d.column), (1, 10));
        assert_eq!(
            d.message,
            "invalid value: expected a whole number from 0 to 4294967295"
        );
    }

    #[test]
    fn yaml_syntax_error_is_located() {
        let d = error_in("version: 1\nname: a\n  bad: indent\n");
        assert_eq!((d.line, d.column), (3, 6));
        assert!(
            d.message.contains("mapping values are not allowed"),
            "{}",
            d.message
        );
    }

    #[test]
    fn duplicate_key_is_named() {
        let d = error_in("version: 1\nname: a\nname: b\n");
        assert_eq!(
            (d.line, d.column, d.message.as_str()),
            (3, 1, "duplicate key `name`")
        );
    }

    #[test]
    fn bad_values_report_their_own_position() {
        let d = error_in(&format!(
            "{HEAD}capacity: {{ min: 1, max: 2 }}\nschedule:\n  - {{ name: s, cron: \"0 25 * * FRI\", duration: 3h, min: 1 }}\n"
        ));
        assert_eq!((d.line, d.column), (6, 22));
        assert!(
            d.message
                .starts_with("invalid cron expression `0 25 * * FRI`"),
            "{}",
            d.message
        );
    }

    #[test]
    fn bad_durations_statistics_and_windows_point_at_the_value() {
        let metric = "metrics:\n  cpu: { namespace: N, name: M, stat: STAT, period: PERIOD }\n";
        let rule =
            "scale_out:\n  - { when: { metric: cpu, above: 1, datapoints: WINDOW }, add: 1 }\n";
        let text = format!("{HEAD}capacity: {{ min: 1, max: 2 }}\n{metric}{rule}");
        let valid = text
            .replace("STAT", "Sum")
            .replace("PERIOD", "1m")
            .replace("WINDOW", "2 of 3");
        let cases = [
            (
                valid.replace("Sum", "Total"),
                (6, 39),
                "unknown statistic `Total`",
            ),
            (
                valid.replace("1m }", "1 minute }"),
                (6, 52),
                "invalid duration `1 minute`",
            ),
            (
                valid.replace("2 of 3", "4 of 3"),
                (8, 50),
                "invalid datapoints `4 of 3`",
            ),
        ];
        for (text, position, message) in cases {
            let d = error_in(&text);
            assert_eq!((d.line, d.column), position, "{}", d.message);
            assert!(d.message.starts_with(message), "{}", d.message);
        }
    }
}
