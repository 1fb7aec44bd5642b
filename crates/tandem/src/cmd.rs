//! Subcommands.

pub mod admin;
pub mod sbc;
pub mod sip;
pub mod up;
