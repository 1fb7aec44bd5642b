//! The brain: all signalling and all decisions. It is the only component
//! that speaks SIP or reads the subscriber tables; media nodes get their
//! work through the control protocol (`proto`).

pub mod auth;
pub mod b2bua;
pub mod cdr;
pub mod metrics;
pub mod nodes;
pub mod registrar;
pub mod routing;
