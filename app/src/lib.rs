//! The memworld application: command-line subcommands and the desktop player.

pub mod cli;
pub mod commands;
pub mod media;
pub mod models;
pub mod panic_report;
pub mod player;
pub mod plot;
