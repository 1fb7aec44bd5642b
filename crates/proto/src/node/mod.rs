//! The media node's side: the session state machine, snapshot-carrying
//! reconnects, and (with the `tokio` feature) a driver.

#[cfg(feature = "tokio")]
mod driver;
pub mod rate;
pub mod session;

#[cfg(feature = "tokio")]
pub use driver::{NodeHandler, run};
pub use rate::PacketRate;
pub use session::{CloseReason, NodeConfig, NodeOutput, NodeSession, NodeState};
