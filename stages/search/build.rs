fn main() {
    haq_build::emit_identity();
    haq_build::emit_torch_rpath();
}
