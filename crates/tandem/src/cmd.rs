//! Subcommands.

pub mod admin;
pub mod sip;
