fn main() {
    eprintln!("haq-search: not implemented yet");
    std::process::exit(2);
}
