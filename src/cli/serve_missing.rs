//! `fm registry serve` (alias `fm studio start`) in a build without the
//! `server` feature: the command parses as always, then says what this
//! build lacks (exit 2) instead of pretending not to know it.

use super::args::ServeArgs;
use super::{Context, Failure};

pub fn serve(_: &Context, _: ServeArgs) -> Result<(), Failure> {
    Err(Failure::without_feature("`fm registry serve`", "server"))
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::super::args::{Cli, ColorChoice};
    use super::super::{Context, Shell, dispatch};

    /// Run by `.ci/run`'s client-only build (`--no-default-features`).
    #[test]
    fn serve_names_the_missing_feature() {
        for argv in [
            ["fm", "registry", "serve", "--storage", "st"],
            ["fm", "studio", "start", "--storage", "st"],
        ] {
            let cli = Cli::try_parse_from(argv).expect("parses in every build");
            let ctx = Context {
                shell: Shell::new(true, false, false, ColorChoice::Never),
                global: cli.global,
                cwd: std::env::temp_dir(),
            };
            let failure = dispatch(&ctx, cli.command).expect_err("no server in this build");
            assert_eq!(failure.code, 2);
            let message = format!("{:?}", failure.report);
            assert!(
                message.contains("`server` feature") && message.contains("--features server"),
                "{message}"
            );
        }
    }
}
