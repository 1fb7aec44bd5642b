//! Subcommands.

pub mod sip;
