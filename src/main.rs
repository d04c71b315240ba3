fn main() {
    std::process::exit(wavelstm::cli::main());
}
