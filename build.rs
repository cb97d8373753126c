fn main() {
    haq_build::emit_identity(&["src/bin/haq-example.rs", "crates/haq-store/src"]);
}
