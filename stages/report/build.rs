fn main() {
    haq_build::emit_identity();
}
