//! Subcommands.

pub mod admin;
pub mod bench;
pub mod mixer;
pub mod sbc;
pub mod sip;
pub mod up;
