//! The policy set: every policy file of a deployment, read and validated together.

use std::collections::HashSet;
use std::fs;
use std::path::{Path, PathBuf};

use crate::model::Policy;
use crate::report::{Diagnostic, Report};
use crate::validate;

/// A policy file's text and the path it is reported under.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    /// The path shown in messages, e.g. `policies/orders.yaml`.
    pub path: String,
    /// The file's contents.
    pub text: String,
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

/// The file as a source, or `None` after recording why it cannot be read.
fn read(file: &Path, problems: &mut Vec<Diagnostic>) -> Option<Source> {
    let path = file.display().to_string();
    match fs::read_to_string(file) {
        Ok(text) => Some(Source { path, text }),
        Err(error) => {
            problems.push(cannot_read(path, &error));
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
