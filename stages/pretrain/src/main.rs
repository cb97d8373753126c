fn main() {
    eprintln!("haq-pretrain: not implemented yet");
    std::process::exit(2);
}
