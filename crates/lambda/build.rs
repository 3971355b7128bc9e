//! Packages the policy set into the functions: every `*.yaml`/`*.yml` file of the directory named
//! by `CAPSTAN_POLICIES` at build time (by default, the repository's `policies/`) is embedded,
//! so a deployed function carries exactly the policies of the commit it was built from.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::{env, fs};

fn main() {
    println!("cargo:rerun-if-env-changed=CAPSTAN_POLICIES");
    let manifest =
        PathBuf::from(env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let dir = env::var_os("CAPSTAN_POLICIES")
        .map(PathBuf::from)
        .unwrap_or_else(|| manifest.join("../../policies"));
    let dir = dir
        .canonicalize()
        .unwrap_or_else(|e| panic!("policy directory {}: {e}", dir.display()));
    println!("cargo:rerun-if-changed={}", dir.display());

    let mut files: Vec<PathBuf> = fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .map(|entry| entry.expect("directory entry").path())
        .filter(|path| {
            matches!(
                path.extension().and_then(|e| e.to_str()),
                Some("yaml" | "yml")
            )
        })
        .collect();
    files.sort();

    let mut code = String::from(
        "/// Policy files embedded at build time: (file name, contents).\npub const EMBEDDED: &[(&str, &str)] = &[\n",
    );
    for path in &files {
        println!("cargo:rerun-if-changed={}", path.display());
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .expect("UTF-8 file name");
        writeln!(
            code,
            "    ({:?}, include_str!({:?})),",
            format!("policies/{name}"),
            path.display().to_string()
        )
        .expect("writing to a String");
    }
    code.push_str("];\n");
    let out = PathBuf::from(env::var("OUT_DIR").expect("cargo sets OUT_DIR")).join("policies.rs");
    fs::write(&out, code).unwrap_or_else(|e| panic!("writing {}: {e}", out.display()));
}
