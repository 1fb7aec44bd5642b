//! The `tandem` command: one binary, a subcommand per role and tool.

mod cmd;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// tandem: an open voice platform — SIP, media relay, conferencing,
/// scripting and billing in one binary.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// SIP tools: check a message, run a SIP responder.
    #[command(subcommand)]
    Sip(cmd::sip::SipCommand),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let result = match cli.command {
        Command::Sip(c) => cmd::sip::run(c),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("tandem: {e:#}");
            ExitCode::from(2)
        }
    }
}
