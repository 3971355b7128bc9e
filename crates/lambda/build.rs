//! Packages the policy set into the functions: every `*.yaml`/`*.yml` file of the directory named
//! by `CAPSTAN_POLICIES` at build time (by default, the repository's `policies/`) is validated
//! here, as one set, and embedded in packaged form (`PolicySet::to_packaged`), so a deployed
//! function carries exactly the policies of the commit it was built from and a cold start only
//! loads them. An invalid set fails the build with its report: each problem's file, line and
//! field.

use std::path::PathBuf;
use std::{env, fs, process};

use capstan_policy::{PolicySet, Source};

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

    let refuse = |report: &dyn std::fmt::Display| -> ! {
        eprintln!(
            "the policy set in {} is not valid, so no function is built with it:\n{report}",
            dir.display()
        );
        process::exit(1);
    };
    let sources = files
        .iter()
        .map(|path| {
            println!("cargo:rerun-if-changed={}", path.display());
            let name = path
                .file_name()
                .and_then(|n| n.to_str())
                .expect("UTF-8 file name");
            let bytes =
                fs::read(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
            Source::from_bytes(format!("policies/{name}"), bytes)
                .unwrap_or_else(|problem| refuse(&problem))
        })
        .collect();
    let set = PolicySet::from_sources(sources).unwrap_or_else(|report| refuse(&report));
    let out = PathBuf::from(env::var("OUT_DIR").expect("cargo sets OUT_DIR")).join("policies.bin");
    fs::write(&out, set.to_packaged()).unwrap_or_else(|e| panic!("writing {}: {e}", out.display()));
}
