//! The policy set: every policy file of a deployment, read and validated together.

use std::collections::HashSet;
use std::fs;
use std::path::{Path, PathBuf};

use crate::model::Policy;
use crate::report::{Diagnostic, Report};
use crate::{limits, validate};

/// A policy file's text and the path it is reported under.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    /// The path shown in messages, e.g. `policies/orders.yaml`.
    pub path: String,
    /// The file's contents.
    pub text: String,
}

impl Source {
    /// The policy file `path` holding `bytes`, or why it cannot be one: more than
    /// [`MAX_FILE_BYTES`](limits::MAX_FILE_BYTES), or not UTF-8 (at the first byte that is not).
    ///
    /// # Errors
    ///
    /// The problem, naming the file.
    pub fn from_bytes(path: impl Into<String>, bytes: Vec<u8>) -> Result<Self, Diagnostic> {
        let path = path.into();
        let size = bytes.len() as u64;
        if size > limits::MAX_FILE_BYTES {
            return Err(limits::file_too_large(path, size));
        }
        String::from_utf8(bytes)
            .map(|text| Self {
                path: path.clone(),
                text,
            })
            .map_err(|error| not_utf8(path, error.as_bytes(), error.utf8_error().valid_up_to()))
    }
}

/// The problem of a file whose byte `at` of `bytes` is where UTF-8 stops: its line, its column
/// counted in the characters before it, and the line as far as it reads.
fn not_utf8(file: String, bytes: &[u8], at: usize) -> Diagnostic {
    let before = String::from_utf8_lossy(&bytes[..at]);
    let line_start = before.rfind('\n').map_or(0, |newline| newline + 1);
    let line = before[line_start..].to_owned();
    Diagnostic {
        file,
        line: before.matches('\n').count() as u64 + 1,
        column: line.chars().count() as u64 + 1,
        message: format!(
            "not UTF-8: byte 0x{:02x} cannot start or continue a character",
            bytes[at]
        ),
        help: Some("save the file as UTF-8".into()),
        source_line: line,
    }
}

/// A validated set of policies: unique names, one policy per resource, every policy valid.
#[derive(Debug, Clone)]
pub struct PolicySet {
    policies: Vec<Policy>,
}

impl PolicySet {
    /// Reads and validates the policy files at `paths`. A directory stands for its `*.yaml`
    /// and `*.yml` files (not its subdirectories), in name order; a file is read whatever its
    /// extension. A path given twice is read once.
    ///
    /// # Errors
    ///
    /// Every problem found: paths that cannot be read as well as invalid policies.
    pub fn load(paths: &[impl AsRef<Path>]) -> Result<Self, Report> {
        let mut problems = Vec::new();
        let files = policy_files(paths, &mut problems);
        let sources = files
            .iter()
            .filter_map(|file| read(file, &mut problems))
            .collect();
        match Self::from_sources(sources) {
            Ok(set) if problems.is_empty() => Ok(set),
            Ok(_) => Err(Report::new(problems)),
            Err(report) => {
                problems.extend_from_slice(report.diagnostics());
                Err(Report::new(problems))
            }
        }
    }

    /// Validates policies already in memory, e.g. read from git.
    ///
    /// # Errors
    ///
    /// Every problem in every source; see the crate documentation.
    pub fn from_sources(sources: Vec<Source>) -> Result<Self, Report> {
        validate::validate(&sources).map(Self::validated)
    }

    /// The set of `policies` that passed validation together.
    pub(crate) fn validated(policies: Vec<Policy>) -> Self {
        Self { policies }
    }

    /// The policies, in the order of their sources.
    pub fn policies(&self) -> &[Policy] {
        &self.policies
    }

    /// The policies, in the order of their sources, owned.
    pub fn into_policies(self) -> Vec<Policy> {
        self.policies
    }

    /// The policy named `name`.
    pub fn get(&self, name: &str) -> Option<&Policy> {
        self.policies.iter().find(|policy| policy.name == name)
    }

    /// How many policies there are.
    pub fn len(&self) -> usize {
        self.policies.len()
    }

    /// Whether there are no policies.
    pub fn is_empty(&self) -> bool {
        self.policies.is_empty()
    }
}

/// The files `paths` stand for, each once, in the order given; a problem for each path that
/// cannot be read.
fn policy_files(paths: &[impl AsRef<Path>], problems: &mut Vec<Diagnostic>) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for path in paths {
        match expand(path.as_ref()) {
            Ok(expanded) => files.extend(expanded),
            Err(problem) => problems.push(problem),
        }
    }
    let mut seen = HashSet::new();
    files.retain(|file| seen.insert(file.clone()));
    files
}

/// The file as a source, or `None` after recording why it cannot be read. A file past
/// [`MAX_FILE_BYTES`](limits::MAX_FILE_BYTES) is not read.
fn read(file: &Path, problems: &mut Vec<Diagnostic>) -> Option<Source> {
    let path = file.display().to_string();
    let read = fs::metadata(file)
        .and_then(|metadata| {
            if metadata.len() > limits::MAX_FILE_BYTES {
                Ok(Err(limits::file_too_large(path.clone(), metadata.len())))
            } else {
                fs::read(file).map(|bytes| Source::from_bytes(path.clone(), bytes))
            }
        })
        .map_err(|error| cannot_read(path, &error));
    match read {
        Ok(Ok(source)) => Some(source),
        Ok(Err(problem)) | Err(problem) => {
            problems.push(problem);
            None
        }
    }
}

/// The problem of a path that cannot be read.
fn cannot_read(path: String, error: &std::io::Error) -> Diagnostic {
    Diagnostic::whole_file(path, format!("cannot read: {error}"))
}

/// The policy files `path` stands for: itself, or a directory's YAML files in name order.
fn expand(path: &Path) -> Result<Vec<PathBuf>, Diagnostic> {
    let problem = |error: std::io::Error| cannot_read(path.display().to_string(), &error);
    if !fs::metadata(path).map_err(problem)?.is_dir() {
        return Ok(vec![path.to_owned()]);
    }
    let mut files = Vec::new();
    for entry in fs::read_dir(path).map_err(problem)? {
        let file = entry.map_err(problem)?.path();
        if is_yaml(&file) && file.is_file() {
            files.push(file);
        }
    }
    files.sort();
    Ok(files)
}

/// Whether `path` ends in `.yaml` or `.yml`.
fn is_yaml(path: &Path) -> bool {
    path.extension()
        .is_some_and(|ext| ext == "yaml" || ext == "yml")
}

#[cfg(test)]
mod tests {
    use std::fs;

    use super::*;

    fn policy(name: &str, group: &str) -> String {
        format!(
            "version: 1\nname: {name}\ntarget: {{ autoscaling_group: {{ name: {group} }} }}\ncapacity: {{ min: 1, max: 3 }}\n"
        )
    }

    #[test]
    fn a_directory_stands_for_its_yaml_files_in_name_order() -> std::io::Result<()> {
        let dir = tempfile::tempdir()?;
        fs::write(dir.path().join("b.yml"), policy("b", "asg-b"))?;
        fs::write(dir.path().join("a.yaml"), policy("a", "asg-a"))?;
        fs::write(dir.path().join("notes.md"), "not a policy")?;
        fs::create_dir(dir.path().join("nested.yaml"))?;
        let set = PolicySet::load(&[dir.path()]).map_err(std::io::Error::other)?;
        let names: Vec<_> = set.policies().iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["a", "b"]);
        assert_eq!(
            set.get("b").map(|p| p.file.clone()),
            Some(dir.path().join("b.yml").display().to_string())
        );
        assert_eq!(
            (set.len(), set.is_empty(), set.get("c").is_none()),
            (2, false, true)
        );
        Ok(())
    }

    #[test]
    fn sources_past_the_limits_are_refused_however_they_come() {
        let big = "#".repeat(1024 * 1024 + 1);
        let from_memory = PolicySet::from_sources(vec![Source {
            path: "big.yaml".into(),
            text: big.clone(),
        }])
        .expect_err("too large");
        let from_bytes = Source::from_bytes("big.yaml", big.into_bytes()).expect_err("too large");
        assert_eq!(from_memory.diagnostics(), [from_bytes]);

        let not_utf8 = Source::from_bytes("a.yaml", b"version: 1\nname: caf\xc3".to_vec())
            .expect_err("not UTF-8");
        assert_eq!(
            (
                not_utf8.line,
                not_utf8.column,
                not_utf8.source_line.as_str()
            ),
            (2, 10, "name: caf")
        );
        assert!(not_utf8.message.starts_with("not UTF-8: byte 0xc3"));
    }

    #[test]
    fn a_file_given_twice_is_read_once() -> std::io::Result<()> {
        let dir = tempfile::tempdir()?;
        let file = dir.path().join("a.yaml");
        fs::write(&file, policy("a", "asg-a"))?;
        let set = PolicySet::load(&[dir.path(), &file]).map_err(std::io::Error::other)?;
        assert_eq!(set.len(), 1);
        Ok(())
    }

    #[test]
    fn a_missing_path_is_reported_with_the_other_problems() -> std::io::Result<()> {
        let dir = tempfile::tempdir()?;
        fs::write(
            dir.path().join("a.yaml"),
            policy("a", "asg-a").replace("version: 1", "version: 2"),
        )?;
        let missing = dir.path().join("missing.yaml");
        let Err(report) = PolicySet::load(&[missing.as_path(), dir.path()]) else {
            panic!("a missing path must be an error");
        };
        let found: Vec<_> = report
            .diagnostics()
            .iter()
            .map(|d| (d.file.clone(), d.line))
            .collect();
        let a = dir.path().join("a.yaml").display().to_string();
        assert_eq!(found, [(missing.display().to_string(), 0), (a, 1)]);
        assert!(
            report.diagnostics()[0].message.starts_with("cannot read: "),
            "{report}"
        );
        Ok(())
    }
}
