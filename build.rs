fn main() {
    // The example stage uses only its own file and the harness, not the CLI.
    haq_build::emit_identity_of_paths(&[
        "src/bin/haq-example.rs",
        "crates/haq-stage/src",
        "crates/haq-store/src",
    ]);
    // The CLI links no libtorch; its end-to-end tests do (they load what stages wrote).
    haq_build::emit_torch_rpath_for_tests();
}
