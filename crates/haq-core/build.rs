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
    cc::Build::new()
        .cpp(true)
        .file(kernel)
        .include(libtorch.join("include"))
        .include(libtorch.join("include/torch/csrc/api/include"))
        .flag("-std=c++17")
        .flag(format!("-D_GLIBCXX_USE_CXX11_ABI={abi}"))
        .flag("-DGLOG_USE_GLOG_EXPORT")
        .opt_level(3)
        .warnings(false)
        .extra_warnings(false)
        .compile("haq_fake_quant");
}
