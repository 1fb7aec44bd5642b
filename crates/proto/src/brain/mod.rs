//! The brain's side: a registry of nodes, one state machine per connection,
//! request correlation, and (with the `tokio` feature) a listener.

pub mod connection;
#[cfg(feature = "tokio")]
mod driver;
pub mod pending;
pub mod registry;

pub use connection::{BrainConfig, BrainConnection, ConnClose, ConnEvent, ConnState};
#[cfg(feature = "tokio")]
pub use driver::{Incoming, NodeConnection, NodeEvent, NodeHandle, RequestError, listen};
pub use pending::Pending;
pub use registry::{DEFAULT_DEAD_AFTER, NodeInfo, NodeRegistry};
