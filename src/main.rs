fn main() -> std::process::ExitCode {
    fm::cli::run(std::env::args_os())
}
