// The crate's tests and benches link libtorch; let them find it at run time.
fn main() {
    haq_build::emit_torch_rpath();
}
