//! Stage identities cover every crate a stage binary is built from, found in the manifests.

use std::path::{Path, PathBuf};

fn names(crates: Vec<PathBuf>) -> Vec<String> {
    crates
        .iter()
        .map(|c| c.file_name().unwrap().to_string_lossy().into_owned())
        .collect()
}

#[test]
fn a_stage_is_built_from_its_crate_and_every_path_dependency_below_it() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let mut search = names(haq_build::crates_built_into(&root.join("stages/search")));
    search.sort();
    assert_eq!(
        search,
        [
            "haq-core",
            "haq-cost",
            "haq-export",
            "haq-stage",
            "haq-store",
            "search"
        ]
    );
    // Through haq-core only: the search stage does not name haq-cost itself.
    let mut report = names(haq_build::crates_built_into(&root.join("stages/report")));
    report.sort();
    assert_eq!(report, ["haq-cost", "haq-stage", "haq-store", "report"]);
}
