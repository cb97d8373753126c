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

/// The `name=value` parts of an identity.
fn parts(id: &str) -> Vec<(String, String)> {
    id.split_whitespace()
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap();
            (k.to_string(), v.to_string())
        })
        .collect()
}

/// The names of the parts that differ between two identities.
fn changed(a: &str, b: &str) -> Vec<String> {
    parts(a)
        .into_iter()
        .zip(parts(b))
        .filter(|(x, y)| x != y)
        .map(|(x, _)| x.0)
        .collect()
}

#[test]
fn the_identity_changes_in_the_part_that_names_what_changed() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let krate = root.join("stage");
    std::fs::create_dir_all(krate.join("src")).unwrap();
    let torch = root.join("torch");
    std::fs::create_dir_all(&torch).unwrap();
    let write = |path: &Path, text: &str| std::fs::write(path, text).unwrap();
    write(
        &root.join("Cargo.toml"),
        "[workspace]\nmembers = [\"stage\"]\n",
    );
    write(&root.join("Cargo.lock"), "version = 4\n");
    write(
        &krate.join("Cargo.toml"),
        "[package]\nname = \"stage\"\n[dependencies]\ntch = \"0.26\"\n",
    );
    write(&krate.join("build.rs"), "fn main() {}\n");
    write(&krate.join("src/main.rs"), "fn main() {}\n");
    write(&torch.join("version.py"), "__version__ = '2.13.0+cpu'\n");
    // The build scripts find libtorch here (.cargo/config.toml sets it for real builds).
    std::env::set_var("LIBTORCH", &torch);
    let id = || haq_build::identity(root, std::slice::from_ref(&krate), &[krate.join("src")]);
    let first = id();
    assert_eq!(
        parts(&first)
            .iter()
            .map(|p| p.0.as_str())
            .collect::<Vec<_>>(),
        ["sources", "lock", "build", "libtorch"]
    );
    assert!(first.ends_with(" libtorch=2.13.0+cpu"), "{first}");
    assert_eq!(id(), first, "the same build has the same identity");

    for (file, text, part) in [
        (
            krate.join("src/main.rs"),
            "fn main() { println!(); }\n",
            "sources",
        ),
        (
            root.join("Cargo.lock"),
            "version = 4\n# tch 0.26.1\n",
            "lock",
        ),
        (krate.join("build.rs"), "fn main() { /* -O2 */ }\n", "build"),
        (
            root.join("Cargo.toml"),
            "[workspace]\nmembers = [\"stage\"]\n[profile.release]\nopt-level = 2\n",
            "build",
        ),
        (
            torch.join("version.py"),
            "__version__ = '2.14.0+cpu'\n",
            "libtorch",
        ),
    ] {
        let before = id();
        write(&file, text);
        assert_eq!(changed(&before, &id()), [part], "{}", file.display());
    }
    // The C++ kernel's ABI flag is read from the environment by haq-core's build script.
    let before = id();
    std::env::set_var("LIBTORCH_CXX11_ABI", "0");
    assert_eq!(changed(&before, &id()), ["build"]);
    std::env::remove_var("LIBTORCH_CXX11_ABI");
}
