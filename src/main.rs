// mimalloc instead of the system allocator: pubgrub's solve allocates and
// frees many small terms, incompatibilities and sets (BENCHMARKS.md,
// "lockmain (2026-12-02 fourth pass)").
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    fm::cli::run(std::env::args_os())
}
