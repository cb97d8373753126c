//! Helpers for the build scripts of haq's binaries.
//!
//! A stage binary's identity goes into every run's fingerprint. It must change when the
//! code that built the binary changes, and must not change when the same sources are
//! built in another checkout (release binaries embed their path), so it is a hash of the
//! sources computed at build time rather than a hash of the executable.

use std::fs;
use std::path::{Path, PathBuf};

/// Hashes every file under `paths` (relative to the crate being built) and exposes the
/// digest to the crate as the compile-time variable `HAQ_BUILD_IDENTITY`.
pub fn emit_identity(paths: &[&str]) {
    let manifest =
        PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("run from a build script"));
    let mut files = Vec::new();
    for rel in paths {
        let path = manifest.join(rel);
        println!("cargo:rerun-if-changed={}", path.display());
        collect_files(&path, &mut files);
    }
    files.sort();
    let mut hasher = blake3::Hasher::new();
    for file in &files {
        // Paths relative to the manifest keep the hash independent of the checkout's location.
        let rel = file.strip_prefix(&manifest).unwrap_or(file);
        hasher.update(rel.to_string_lossy().as_bytes());
        hasher.update(&[0]);
        let bytes = fs::read(file).unwrap_or_else(|e| panic!("reading {}: {e}", file.display()));
        hasher.update(&(bytes.len() as u64).to_le_bytes());
        hasher.update(&bytes);
    }
    let hex = hasher.finalize().to_hex();
    println!("cargo:rustc-env=HAQ_BUILD_IDENTITY={}", &hex[..32]);
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
