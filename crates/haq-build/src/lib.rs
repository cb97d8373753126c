//! Helpers for the build scripts of haq's binaries.
//!
//! A stage binary's identity goes into every run's fingerprint. It must change when what
//! built the binary changes (its sources, dependency versions, build scripts and flags,
//! libtorch), and must not change when the same sources are built in another checkout
//! (release binaries embed their path), so it is computed at build time rather than
//! a hash of the executable.

use std::fs;
use std::path::{Path, PathBuf};

/// Exposes the package's build identity to the crate as the compile-time variable
/// `HAQ_BUILD_IDENTITY` ([`identity`]): its `src/` and, recursively, the `src/` of every
/// path dependency its manifest names (directly or through `workspace = true`), so no
/// list of source folders can fall out of date when a dependency is added; and what else
/// changes the binary's results.
pub fn emit_identity() {
    let manifest_dir = manifest_dir();
    let crates = crates_built_into(&manifest_dir);
    let sources: Vec<PathBuf> = crates.iter().map(|c| c.join("src")).collect();
    emit(&identity(&workspace_root(&manifest_dir), &crates, &sources));
}

/// The folder of the package at `manifest_dir` and of each of its path dependencies,
/// recursively (normal dependencies: dev and build ones do not go into the binary).
pub fn crates_built_into(manifest_dir: &Path) -> Vec<PathBuf> {
    let root = workspace_root(manifest_dir);
    let workspace_deps = read_manifest(&root)
        .and_then(|m| m.get("workspace")?.get("dependencies")?.as_table().cloned())
        .unwrap_or_default();
    let mut crates = Vec::new();
    collect_path_deps(manifest_dir, &root, &workspace_deps, &mut crates);
    crates
}

/// [`emit_identity`] over the given files and folders (relative to the package): for a
/// binary that uses less than its package does (the `haq` package's example stage).
pub fn emit_identity_of_paths(paths: &[&str]) {
    let manifest_dir = manifest_dir();
    let sources: Vec<PathBuf> = paths.iter().map(|p| manifest_dir.join(p)).collect();
    emit(&identity(
        &workspace_root(&manifest_dir),
        &[manifest_dir],
        &sources,
    ));
}

/// Environment variables the build scripts read that change the binaries: the C++
/// kernel's ABI flag (crates/haq-core/build.rs) and the CUDA link.
const BUILD_ENV: [&str; 2] = ["LIBTORCH_CXX11_ABI", "HAQ_CUDA"];

/// The identity of a binary built from the packages `crates` of the workspace at `root`,
/// whose code is `sources`: `name=value` parts, so that a stale stage can say what changed.
/// - `sources`: every file under `sources` (their paths relative to `root` included, so
///   the checkout's location is not);
/// - `lock`: Cargo.lock, the versions of every dependency;
/// - `build`: the manifests (features, profiles), the build scripts (the C++ kernel's
///   flags), the build helper itself and [`BUILD_ENV`];
/// - `libtorch`: the version of the libtorch at `LIBTORCH`, where a crate links tch.
pub fn identity(root: &Path, crates: &[PathBuf], sources: &[PathBuf]) -> String {
    let root = root.canonicalize().unwrap_or_else(|_| root.to_path_buf());
    let mut parts = vec![
        ("sources", digest(&root, sources)),
        ("lock", digest(&root, &[root.join("Cargo.lock")])),
    ];
    let mut build: Vec<PathBuf> = vec![
        root.join("Cargo.toml"),
        Path::new(env!("CARGO_MANIFEST_DIR")).join("src"),
    ];
    for c in crates {
        build.extend([c.join("Cargo.toml"), c.join("build.rs")]);
    }
    let mut build_digest = digest(&root, &build);
    for var in BUILD_ENV {
        println!("cargo:rerun-if-env-changed={var}");
        if let Ok(value) = std::env::var(var) {
            build_digest = blake3::hash(format!("{build_digest} {var}={value}").as_bytes())
                .to_hex()[..16]
                .to_string();
        }
    }
    parts.push(("build", build_digest));
    if crates.iter().any(|c| links_tch(c)) {
        parts.push(("libtorch", libtorch_version()));
    }
    parts
        .iter()
        .map(|(name, value)| format!("{name}={value}"))
        .collect::<Vec<_>>()
        .join(" ")
}

fn emit(identity: &str) {
    println!("cargo:rustc-env=HAQ_BUILD_IDENTITY={identity}");
}

fn links_tch(crate_dir: &Path) -> bool {
    read_manifest(crate_dir)
        .and_then(|m| m.get("dependencies")?.as_table().cloned())
        .is_some_and(|deps| deps.contains_key("tch"))
}

/// The version of the libtorch at `LIBTORCH`: PyTorch's `version.py` where it is a Python
/// package (scripts/setup's), `build-version` in a libtorch archive; `unknown` otherwise.
fn libtorch_version() -> String {
    println!("cargo:rerun-if-env-changed=LIBTORCH");
    let Ok(root) = std::env::var("LIBTORCH") else {
        return "unknown".into();
    };
    let root = Path::new(&root);
    let python = root.join("version.py");
    let archive = root.join("build-version");
    for file in [&python, &archive].into_iter().filter(|f| f.exists()) {
        println!("cargo:rerun-if-changed={}", file.display());
    }
    if let Ok(text) = fs::read_to_string(&python) {
        let version = text.lines().find_map(|l| {
            let value = l.strip_prefix("__version__")?.trim_start();
            let value = value.strip_prefix('=')?.trim();
            Some(value.trim_matches(|c| c == '\'' || c == '"').to_string())
        });
        if let Some(version) = version {
            return version;
        }
    }
    fs::read_to_string(&archive).map_or_else(|_| "unknown".into(), |v| v.trim().to_string())
}

fn manifest_dir() -> PathBuf {
    PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("run from a build script"))
}

/// The nearest folder at or above `dir` whose manifest has a `[workspace]` table.
fn workspace_root(dir: &Path) -> PathBuf {
    dir.ancestors()
        .find(|d| read_manifest(d).is_some_and(|m| m.contains_key("workspace")))
        .unwrap_or(dir)
        .to_path_buf()
}

fn read_manifest(dir: &Path) -> Option<toml::Table> {
    let path = dir.join("Cargo.toml");
    let text = fs::read_to_string(&path).ok()?;
    println!("cargo:rerun-if-changed={}", path.display());
    Some(
        text.parse()
            .unwrap_or_else(|e| panic!("parsing {}: {e}", path.display())),
    )
}

/// `workspace_deps` is the root manifest's `[workspace.dependencies]`, which
/// `name.workspace = true` refers to.
fn collect_path_deps(
    dir: &Path,
    root: &Path,
    workspace_deps: &toml::Table,
    out: &mut Vec<PathBuf>,
) {
    let dir = dir.canonicalize().unwrap_or_else(|_| dir.to_path_buf());
    if out.contains(&dir) {
        return;
    }
    out.push(dir.clone());
    let manifest = read_manifest(&dir).unwrap_or_default();
    let deps = manifest.get("dependencies").and_then(|d| d.as_table());
    for (name, spec) in deps.into_iter().flatten() {
        let (base, spec) = if spec.get("workspace").and_then(|w| w.as_bool()) == Some(true) {
            (root, workspace_deps.get(name))
        } else {
            (dir.as_path(), Some(spec))
        };
        if let Some(path) = spec.and_then(|s| s.get("path")).and_then(|p| p.as_str()) {
            collect_path_deps(&base.join(path), root, workspace_deps, out);
        }
    }
}

/// A hash of every file under `paths` and of its path relative to `root`; 16 hex digits.
fn digest(root: &Path, paths: &[PathBuf]) -> String {
    let mut files = Vec::new();
    for path in paths {
        // Cargo reruns a build script on every build for a path that does not exist.
        if path.exists() {
            println!("cargo:rerun-if-changed={}", path.display());
        }
        collect_files(path, &mut files);
    }
    files.sort();
    files.dedup();
    let mut hasher = blake3::Hasher::new();
    for file in &files {
        let canonical = file.canonicalize().unwrap_or_else(|_| file.clone());
        let rel = canonical.strip_prefix(root).unwrap_or(&canonical);
        hasher.update(rel.to_string_lossy().as_bytes());
        hasher.update(&[0]);
        let bytes = fs::read(file).unwrap_or_else(|e| panic!("reading {}: {e}", file.display()));
        hasher.update(&(bytes.len() as u64).to_le_bytes());
        hasher.update(&bytes);
    }
    hasher.finalize().to_hex()[..16].to_string()
}

fn collect_files(path: &Path, out: &mut Vec<PathBuf>) {
    if path.is_dir() {
        let entries =
            fs::read_dir(path).unwrap_or_else(|e| panic!("listing {}: {e}", path.display()));
        for entry in entries.flatten() {
            collect_files(&entry.path(), out);
        }
    } else if path.is_file() {
        out.push(path.to_path_buf());
    }
}

/// Lets the binaries find libtorch at run time without LD_LIBRARY_PATH: the directory
/// `LIBTORCH/lib` (set by `.cargo/config.toml` to the set-up's `.libtorch` link) becomes
/// an rpath, resolved to its real location so libtorch's own `$ORIGIN` look-ups work.
///
/// With `HAQ_CUDA=1` in the build's environment, libtorch_cuda is linked too: by default
/// the linker drops it (nothing references it directly), and libtorch then sees no GPU.
pub fn emit_torch_rpath() {
    torch_link_args("cargo:rustc-link-arg");
}

/// [`emit_torch_rpath`] for the package's tests only: for a package whose binaries do not
/// link libtorch but whose tests do (the `haq` CLI).
pub fn emit_torch_rpath_for_tests() {
    torch_link_args("cargo:rustc-link-arg-tests");
}

fn torch_link_args(directive: &str) {
    println!("cargo:rerun-if-env-changed=LIBTORCH");
    println!("cargo:rerun-if-env-changed=HAQ_CUDA");
    if std::env::var("HAQ_CUDA").as_deref() == Ok("1") {
        println!("{directive}=-Wl,--no-as-needed,-ltorch_cuda,--as-needed");
    }
    let Ok(root) = std::env::var("LIBTORCH") else {
        return;
    };
    let lib = Path::new(&root).join("lib");
    if let Ok(real) = lib.canonicalize() {
        println!("{directive}=-Wl,-rpath,{}", real.display());
    }
}
