fn main() {
    haq_build::emit_identity(&[
        "src",
        "../../crates/haq-cost/src",
        "../../crates/haq-core/src",
        "../../crates/haq-store/src",
    ]);
    haq_build::emit_torch_rpath();
}
