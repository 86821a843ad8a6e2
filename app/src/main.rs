//! `memworld` binary: parses the command line and reports errors as one line, non-zero exit.

use clap::Parser;

fn main() {
    memworld::panic_report::install();
    let cli = memworld::cli::Cli::parse();
    if let Err(err) = memworld::cli::run(cli) {
        eprintln!("error: {err:#}");
        std::process::exit(1);
    }
}
