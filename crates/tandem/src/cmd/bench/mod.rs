//! `tandem bench ...`: sizing tools an operator runs on their own hardware.

mod cpu;
pub mod relay;

use std::process::ExitCode;

use clap::Subcommand;

#[derive(Subcommand, Debug)]
pub enum BenchCommand {
    /// Relay throughput: packets/s per core of relay CPU, loss and added
    /// latency, for tandem's SBC and, side by side, a bare recvmmsg/sendmmsg
    /// loop and rtpengine.
    Relay(relay::RelayArgs),
}

pub fn run(cmd: BenchCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        BenchCommand::Relay(args) => {
            relay::run(&args)?;
        }
    }
    Ok(ExitCode::SUCCESS)
}
