//! The `harness` binary: parse the command line, run, exit with the
//! documented code. Everything that is not the command line lives in the
//! `harness` library.

mod app;
mod cli;

use std::panic::AssertUnwindSafe;

use clap::Parser;
use harness::{exit::Exit, panics};

fn main() -> std::process::ExitCode {
    // First: every later panic, on any thread, is recorded and reported.
    panics::install();
    let cli = cli::Cli::parse();
    let output = cli.global.output;
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return Exit::Internal.code().into();
        }
    };
    // A panic that unwinds out of the whole command (the pipeline catches
    // those of its stages) still ends in a message and the documented code.
    let exit =
        match std::panic::catch_unwind(AssertUnwindSafe(|| runtime.block_on(app::dispatch(cli)))) {
            Ok(Ok(exit)) => exit,
            Ok(Err(failure)) => app::report_error(&failure, output),
            Err(payload) => app::report_panic(&panics::caught(payload.as_ref()), output),
        };
    // A panic in a task nobody awaited still means harness is broken.
    let exit = if panics::any() { Exit::Panicked } else { exit };
    exit.code().into()
}
