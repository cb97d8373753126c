fn main() {
    eprintln!("haq-calibrate: not implemented yet");
    std::process::exit(2);
}
