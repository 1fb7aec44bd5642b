//! SIP transports on tokio. The sans-IO `sip` crate does not depend on this one.
pub mod guard;
