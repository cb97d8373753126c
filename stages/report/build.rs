fn main() {
    haq_build::emit_identity(&[
        "src",
        "../../crates/haq-cost/src",
        "../../crates/haq-store/src",
    ]);
}
