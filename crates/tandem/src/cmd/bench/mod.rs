//! `tandem bench ...`: sizing tools an operator runs on their own hardware.

mod cpu;
pub mod mixer;
pub mod relay;

use std::process::ExitCode;

use clap::Subcommand;

#[derive(Subcommand, Debug)]
pub enum BenchCommand {
    /// Relay throughput: packets/s per core of relay CPU, loss and added
    /// latency, for tandem's SBC and, side by side, a bare recvmmsg/sendmmsg
    /// loop and rtpengine.
    Relay(relay::RelayArgs),
    /// Conference sizing: participants per core of mixer CPU for a
    /// conference size, codec and rate, end to end over loopback sockets
    /// (or the engine alone with --kernel).
    Mixer(mixer::MixerArgs),
}

pub fn run(cmd: BenchCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        BenchCommand::Relay(args) => {
            relay::run(&args)?;
        }
        BenchCommand::Mixer(args) => {
            mixer::run(&args)?;
        }
    }
    Ok(ExitCode::SUCCESS)
}
