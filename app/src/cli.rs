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
pub enum Command {
    /// Play a scene in a window (keys, HUD, F5 records the session as an episode file).
    Play(crate::player::PlayArgs),
    /// Record scripted-policy episodes to .npz files (parallel, resumable).
    Record(crate::commands::record::RecordArgs),
    /// Run a policy headless and write an animated GIF (and a contact sheet).
    Rollout(crate::commands::rollout::RolloutArgs),
    /// Validate episode files (ours or Memory Maze's) and summarise them.
    Inspect(crate::commands::inspect::InspectArgs),
    /// Train a world model (diffusion forcing, clean-prefix long-context scheme), resumable.
    Train(crate::commands::train::TrainArgs),
    /// Evaluate checkpoints on the memory protocols (retrieval, reasoning): tables, plots, GIFs.
    Eval(crate::commands::eval::EvalArgs),
    /// Export a checkpoint's EMA weights as a small inference checkpoint (f16), as shipped.
    Export(crate::commands::export::ExportArgs),
    /// Measure performance (dream: per-frame latency against rollout length).
    Bench(crate::commands::bench::BenchArgs),
}

/// Run a parsed command line.
pub fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Play(args) => crate::player::run(args),
        Command::Record(args) => crate::commands::record::run(args),
        Command::Rollout(args) => crate::commands::rollout::run(args),
        Command::Inspect(args) => crate::commands::inspect::run(args),
        Command::Train(args) => crate::commands::train::run(args),
        Command::Eval(args) => crate::commands::eval::run(args),
        Command::Export(args) => crate::commands::export::run(args),
        Command::Bench(args) => crate::commands::bench::run(args),
    }
}
