//! The `tandem` command: one binary, a subcommand per role and tool.

mod cmd;
mod config;
mod http;
mod limits;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// tandem: an open voice platform — SIP, media relay, conferencing,
/// scripting and billing in one binary.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,

    #[command(flatten)]
    store: cmd::admin::StoreArgs,
}

#[derive(Subcommand)]
enum Command {
    /// Run every role (brain, SBC, API) in one process with the embedded
    /// store: the way to start.
    Up(cmd::up::UpArgs),
    /// Run the brain role alone; SBCs join it with `tandem sbc`.
    Brain(cmd::up::BrainArgs),
    /// Print the default configuration file, with what each key means.
    Config,
    /// SIP tools: check a message, run a SIP responder.
    #[command(subcommand)]
    Sip(cmd::sip::SipCommand),
    /// Tenants: the operators (MVNOs) hosted on this platform, told apart by SIP domain.
    #[command(subcommand)]
    Tenant(cmd::admin::TenantCommand),
    /// Subscribers: a tenant's users, with SIP credentials and numbers.
    #[command(subcommand)]
    Subscriber(cmd::admin::SubscriberCommand),
    /// Numbers: a tenant's DIDs, routed to a conference room or a subscriber.
    #[command(subcommand)]
    Number(cmd::admin::NumberCommand),
    /// Run the conference mixer role on its own, joined to a brain.
    Mixer(cmd::mixer::MixerArgs),
    /// Run the SBC role (media relay) on its own, joined to a brain.
    Sbc(cmd::sbc::SbcArgs),
    /// Call detail records.
    #[command(subcommand)]
    Cdr(cmd::admin::CdrCommand),
    /// Sizing tools: what this machine carries.
    #[command(subcommand)]
    Bench(cmd::bench::BenchCommand),
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
    if matches!(
        cli.command,
        Command::Config
            | Command::Tenant(_)
            | Command::Subscriber(_)
            | Command::Number(_)
            | Command::Cdr(_)
    ) {
        // Listing commands end quietly when their reader does (`| head`),
        // as Unix tools do. Servers keep Rust's default (EPIPE as an error):
        // a peer closing a socket must not kill them.
        // SAFETY: setting a signal disposition before any thread starts.
        unsafe {
            libc::signal(libc::SIGPIPE, libc::SIG_DFL);
        }
    }
    let result = match cli.command {
        Command::Up(args) => cmd::up::up(args, &cli.store),
        Command::Brain(args) => cmd::up::brain(args, &cli.store),
        Command::Config => {
            print!("{}", config::DEFAULT_TOML);
            Ok(ExitCode::SUCCESS)
        }
        Command::Sip(c) => cmd::sip::run(c),
        Command::Tenant(c) => cmd::admin::tenant(c, &cli.store),
        Command::Subscriber(c) => cmd::admin::subscriber(c, &cli.store),
        Command::Number(c) => cmd::admin::number(c, &cli.store),
        Command::Cdr(c) => cmd::admin::cdr(c, &cli.store),
        Command::Sbc(args) => cmd::sbc::run(args),
        Command::Mixer(args) => cmd::mixer::run(args),
        Command::Bench(c) => cmd::bench::run(c),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("tandem: {e:#}");
            ExitCode::from(2)
        }
    }
}
