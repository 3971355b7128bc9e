//! Problems found in a policy set, rendered like compiler errors: `file:line:column`, the
//! offending line with a caret under the key or value, and an optional `help:` line.

use std::fmt;

use serde_saphyr::Location;

use crate::Source;

/// One problem, pointing at the key or value that causes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// The file, as given (e.g. `policies/orders.yaml`).
    pub file: String,
    /// 1-based line. 0 when the problem concerns the whole file, e.g. it cannot be read.
    pub line: u64,
    /// 1-based column, in characters. 0 when `line` is 0.
    pub column: u64,
    /// What is wrong, e.g. ``unknown key `scale_ot` ``.
    pub message: String,
    /// How to fix it, when there is something useful to say.
    pub help: Option<String>,
    /// The offending line of the file, without its line ending. Empty when `line` is 0.
    pub source_line: String,
}

impl Diagnostic {
    /// A problem at `at` in `source`.
    pub(crate) fn new(source: &Source, at: Location, message: impl Into<String>) -> Self {
        let source_line = usize::try_from(at.line())
            .ok()
            .and_then(|line| source.text.lines().nth(line.checked_sub(1)?))
            .unwrap_or_default();
        Self {
            file: source.path.clone(),
            line: at.line(),
            column: at.column(),
            message: message.into(),
            help: None,
            source_line: source_line.to_owned(),
        }
    }

    /// A problem with the file as a whole, e.g. it cannot be read.
    pub(crate) fn whole_file(file: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            file: file.into(),
            line: 0,
            column: 0,
            message: message.into(),
            help: None,
            source_line: String::new(),
        }
    }

    /// The same problem with a `help:` line.
    pub(crate) fn with_help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }

    /// Writes the gutter, the source line and a caret under `column`.
    fn fmt_snippet(&self, f: &mut fmt::Formatter<'_>, gutter: &str) -> fmt::Result {
        // Keep tabs in the padding so the caret lines up however tabs are displayed.
        let padding: String = self
            .source_line
            .chars()
            .take(usize::try_from(self.column.saturating_sub(1)).unwrap_or(usize::MAX))
            .map(|c| if c == '\t' { '\t' } else { ' ' })
            .collect();
        writeln!(f, "{gutter} |")?;
        writeln!(f, "{} | {}", self.line, self.source_line)?;
        write!(f, "{gutter} | {padding}^")
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let gutter = " ".repeat(self.line.to_string().len());
        if self.line == 0 {
            write!(f, "{}: error: {}", self.file, self.message)?;
        } else {
            writeln!(
                f,
                "{}:{}:{}: error: {}",
                self.file, self.line, self.column, self.message
            )?;
            self.fmt_snippet(f, &gutter)?;
        }
        if let Some(help) = &self.help {
            write!(f, "\n{gutter} = help: {help}")?;
        }
        Ok(())
    }
}

/// Every problem found in a policy set. Nothing in a set acts until its report is empty, so
/// a set is either wholly valid or rejected with all its problems at once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    diagnostics: Vec<Diagnostic>,
}

impl Report {
    /// A report of `diagnostics`, which must not be empty.
    pub(crate) fn new(diagnostics: Vec<Diagnostic>) -> Self {
        debug_assert!(
            !diagnostics.is_empty(),
            "a report needs at least one problem"
        );
        Self { diagnostics }
    }

    /// The problems, in file order and, within a file, by position.
    pub fn diagnostics(&self) -> &[Diagnostic] {
        &self.diagnostics
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for diagnostic in &self.diagnostics {
            writeln!(f, "{diagnostic}\n")?;
        }
        match self.diagnostics.len() {
            1 => write!(f, "1 error"),
            n => write!(f, "{n} errors"),
        }
    }
}

impl std::error::Error for Report {}

#[cfg(test)]
mod tests {
    use super::*;

    fn diagnostic(line: u64, column: u64, source_line: &str) -> Diagnostic {
        Diagnostic {
            file: "policies/bad.yaml".into(),
            line,
            column,
            message: "unknown key `scale_ot`".into(),
            help: Some("did you mean `scale_out`?".into()),
            source_line: source_line.into(),
        }
    }

    #[test]
    fn renders_like_rustc_with_the_caret_under_the_column() {
        let rendered = diagnostic(12, 3, "  scale_ot:").to_string();
        let expected = "\
policies/bad.yaml:12:3: error: unknown key `scale_ot`
   |
12 |   scale_ot:
   |   ^
   = help: did you mean `scale_out`?";
        assert_eq!(rendered, expected);
    }

    #[test]
    fn keeps_tabs_in_the_caret_padding() {
        let rendered = diagnostic(1, 3, "\t\tx").to_string();
        assert!(rendered.contains("1 | \t\tx\n  | \t\t^"), "{rendered}");
    }

    #[test]
    fn a_whole_file_problem_has_no_snippet() {
        let rendered = Diagnostic::whole_file("policies/x.yaml", "cannot read: gone").to_string();
        assert_eq!(rendered, "policies/x.yaml: error: cannot read: gone");
    }

    #[test]
    fn a_report_ends_with_the_error_count() {
        let one = Report::new(vec![diagnostic(1, 1, "x")]);
        assert!(one.to_string().ends_with("\n\n1 error"), "{one}");
        let two = Report::new(vec![diagnostic(1, 1, "x"), diagnostic(2, 1, "y")]);
        assert!(two.to_string().ends_with("\n\n2 errors"), "{two}");
        assert_eq!(two.to_string().matches(": error: ").count(), 2);
    }
}
