//! The `harness` binary: parse the command line, run, exit with the
//! documented code. Everything else lives in the library.

use clap::Parser;
use harness::{app, cli::Cli, exit::Exit};

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let output = cli.global.output;
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return Exit::Internal.code().into();
        }
    };
    let exit = match runtime.block_on(app::run(cli)) {
        Ok(exit) => exit,
        Err(error) => app::report_error(&error, output),
    };
    exit.code().into()
}
