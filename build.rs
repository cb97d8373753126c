fn main() {
    haq_build::emit_identity(&["src/bin/haq-example.rs", "crates/haq-store/src"]);
    // The CLI links no libtorch; its end-to-end tests do (they load what stages wrote).
    haq_build::emit_torch_rpath_for_tests();
}
