// The crate's tests and benches link libtorch; let them find it at run time. The fused
// fake-quantization kernel (src/quant/fake_quant.cpp) is C++ against libtorch's headers,
// compiled as tch's own C++ wrapper is (torch-sys's build script).
fn main() {
    haq_build::emit_torch_rpath();
    let kernel = "src/quant/fake_quant.cpp";
    println!("cargo:rerun-if-changed={kernel}");
    println!("cargo:rerun-if-env-changed=LIBTORCH_CXX11_ABI");
    let libtorch = std::path::PathBuf::from(
        std::env::var("LIBTORCH").expect("LIBTORCH is set by .cargo/config.toml"),
    );
    let abi = std::env::var("LIBTORCH_CXX11_ABI").unwrap_or_else(|_| "1".into());
    let mut build = cc::Build::new();
    build
        .cpp(true)
        .file(kernel)
        .include(libtorch.join("include"))
        .include(libtorch.join("include/torch/csrc/api/include"))
        .flag("-std=c++17")
        .flag(format!("-D_GLIBCXX_USE_CXX11_ABI={abi}"))
        .flag("-DGLOG_USE_GLOG_EXPORT")
        .opt_level(3)
        .warnings(false)
        .extra_warnings(false);
    // at::parallel_for is inline OpenMP in libtorch's headers: compiled without -fopenmp it
    // runs on one thread. With it, the kernel must share libtorch's OpenMP runtime (one
    // thread pool, the count tch::set_num_threads sets), so it links the copy libtorch
    // ships rather than the compiler's.
    let lib = libtorch.join("lib");
    match openmp_runtime(&lib) {
        Some(runtime) => {
            build.flag("-fopenmp");
            println!("cargo:rustc-link-search=native={}", lib.display());
            println!("cargo:rustc-link-lib=dylib:+verbatim={runtime}");
        }
        None => println!(
            "cargo:warning=no libgomp in {}: the fake-quantization kernel runs on one thread",
            lib.display()
        ),
    }
    build.compile("haq_fake_quant");
}

/// The file name of the OpenMP runtime libtorch links (`libgomp.so.1` in PyTorch's wheels,
/// a hashed `libgomp-….so.1` in its libtorch archives), if it ships one.
fn openmp_runtime(lib: &std::path::Path) -> Option<String> {
    let mut names: Vec<String> = std::fs::read_dir(lib)
        .ok()?
        .filter_map(|entry| entry.ok()?.file_name().into_string().ok())
        .filter(|name| name.starts_with("libgomp") && name.contains(".so"))
        .collect();
    names.sort();
    names.into_iter().next()
}
