fn main() {
    eprintln!("haq-finetune: not implemented yet");
    std::process::exit(2);
}
