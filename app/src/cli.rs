//! Command-line interface: one subcommand per job (SPEC §1).

use clap::{Parser, Subcommand};

/// memworld: play, record, train and evaluate inside a learned video world model that remembers.
#[derive(Parser, Debug)]
#[command(name = "memworld", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {}

/// Run a parsed command line.
pub fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {}
}
