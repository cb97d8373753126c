fn main() {
    haq_build::emit_identity(&["src/bin/haq-example.rs", "crates/haq-store/src"]);
    // In a workspace build haq-core is compiled with libtorch for the stages, and the
    // `haq` binary links it too.
    haq_build::emit_torch_rpath();
}
