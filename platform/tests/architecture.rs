//! The house rules, checked over `cargo metadata` so the folder tree keeps
//! reading as the architecture (`docs/src/architecture.md`):
//!
//! - `common` is the contract and depends on no workspace crate;
//! - the shared small crates (`promql`, `prompb`) depend on `common` at most;
//! - `pipeline`, the runtime, depends on `common` only;
//! - phase0 and each craft depend on `common` and the shared small crates,
//!   never on each other (phase0 also runs on `pipeline`, its binary being
//!   the seed's whole system);
//! - `fixtures` and `loadgen` link no craft and no phase0;
//! - only `platform` may link everything.
//!
//! Dev-dependencies are free: a craft's tests may wire real neighbours
//! (phase0's store, the pipeline) through the contract.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

/// What each workspace crate may have as a normal dependency.
fn allowed(krate: &str) -> Option<&'static [&'static str]> {
    const SHARED: &[&str] = &["common", "promql", "prompb"];
    Some(match krate {
        "common" => &[],
        "promql" | "prompb" => &["common"],
        "pipeline" => &["common"],
        "phase0" => &["common", "pipeline"],
        "craft1-ingestion" | "craft2-queue" | "craft3-storage" | "craft4-query"
        | "craft5-alerting" => SHARED,
        "fixtures" => &["common", "prompb"],
        "loadgen" => &["common", "prompb", "fixtures"],
        "platform" => return None,
        other => {
            panic!("workspace crate {other} has no rule in platform/tests/architecture.rs: add one")
        }
    })
}

fn workspace_dependencies() -> BTreeMap<String, Vec<(String, String)>> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let output = Command::new(env!("CARGO"))
        .args([
            "metadata",
            "--format-version",
            "1",
            "--no-deps",
            "--offline",
        ])
        .current_dir(&root)
        .output()
        .expect("cargo metadata runs");
    assert!(
        output.status.success(),
        "cargo metadata failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let metadata: serde_json::Value =
        serde_json::from_slice(&output.stdout).expect("metadata is JSON");
    let packages = metadata["packages"].as_array().expect("packages");
    let members: Vec<String> = packages
        .iter()
        .map(|p| p["name"].as_str().expect("name").to_string())
        .collect();
    packages
        .iter()
        .map(|package| {
            let name = package["name"].as_str().expect("name").to_string();
            let dependencies = package["dependencies"]
                .as_array()
                .expect("dependencies")
                .iter()
                .filter(|d| {
                    members
                        .iter()
                        .any(|m| m == d["name"].as_str().unwrap_or(""))
                })
                .map(|d| {
                    let kind = d["kind"].as_str().unwrap_or("normal").to_string();
                    (d["name"].as_str().unwrap_or("").to_string(), kind)
                })
                .collect();
            (name, dependencies)
        })
        .collect()
}

#[test]
fn crates_import_only_what_the_architecture_allows() {
    let mut broken = Vec::new();
    for (krate, dependencies) in workspace_dependencies() {
        let Some(allowed) = allowed(&krate) else {
            continue;
        };
        for (dependency, kind) in dependencies {
            if kind == "dev" {
                assert!(
                    dependency != "platform" && dependency != "loadgen",
                    "{krate} dev-depends on the binary crate {dependency}"
                );
                continue;
            }
            if !allowed.contains(&dependency.as_str()) {
                broken.push(format!("{krate} -> {dependency} ({kind})"));
            }
        }
    }
    assert!(
        broken.is_empty(),
        "dependencies the architecture forbids (docs/src/architecture.md):\n  {}",
        broken.join("\n  ")
    );
}

#[test]
fn slot_traits_carry_no_http() {
    let common = Path::new(env!("CARGO_MANIFEST_DIR")).join("../common/src");
    for file in [
        "queue.rs",
        "storage.rs",
        "query.rs",
        "alerting.rs",
        "notifier.rs",
    ] {
        let text = std::fs::read_to_string(common.join(file)).expect("read slot file");
        let code: String = text
            .lines()
            .filter(|line| !line.trim_start().starts_with("//"))
            .collect::<Vec<_>>()
            .join("\n")
            // An error kind, not the HTTP type.
            .replace("BadRequest", "");
        for needle in ["http::", "Request", "Response", "serde_json::Value"] {
            assert!(
                !code.contains(needle),
                "common/src/{file} mentions {needle}: slot traits carry no HTTP types"
            );
        }
    }
}
