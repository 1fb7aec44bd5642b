//! The brain↔node control protocol: the only contract between tandem's
//! brain and its media nodes (SBCs and mixers).
//!
//! Everything here except the `tokio` drivers is sans-IO: bytes and
//! `Instant`s in, messages, bytes and deadlines out.
//!
//! | module | one idea |
//! | --- | --- |
//! | [`message`] | what each side sends |
//! | [`snapshot`] | the desired state of calls, conferences and port ranges |
//! | [`store`] | version ordering of snapshots on a node |
//! | [`frame`] | messages on a byte stream: length, flags, LZ4 |
//! | [`version`] | which versions interoperate |
//! | [`backoff`] | reconnect delays |
//! | [`node`] | the node's session (and driver) |
//! | [`brain`] | the brain's registry, connections (and listener) |
//!
//! # Message flow
//!
//! ```text
//!  node                                             brain
//!   │ ── TCP connect (retried: 100 ms → 2 s, jittered) ──► │
//!   │ ── Hello {id, role, version, capacity,               │
//!   │           media addrs, ranges, snapshots} ─────────► │  version check
//!   │ ◄── Welcome {brain_id, version, hb interval,         │
//!   │              dead_after}   (or Refused + close) ──── │
//!   │ ── Heartbeat {seq, load} ─── every ~100 ms ────────► │
//!   │ ◄── HeartbeatAck {seq} ───────────────────────────── │
//!   │ ◄── Request {req_id, AssignRanges | ApplyCall |      │
//!   │       ReleaseCall | GetStats | ApplyConference |     │
//!   │       ReleaseConference | GetConferenceStats} ────── │
//!   │ ── Reply {req_id, Ok(body) | Err {code, message}} ─► │
//!   │ ── Event {LegLatched | Dtmf | MediaTimeout |         │
//!   │           LegStats | Talking | RecordingDone} ────►  │
//!   ╳  brain dies: media flows on; after dead_after of     ╳
//!   │  silence the node drops the link and reconnects,     │
//!   │  uploading everything it carries in its Hello ─────► │  new brain rebuilds
//! ```
//!
//! Either side that hears nothing from the other for `dead_after` (default
//! 500 ms, five heartbeats) drops the connection. A node keeps its calls
//! when it loses the brain; the brain moves a dead node's work elsewhere.
//!
//! Snapshots are complete, not deltas, and versioned per call/conference:
//! a node refuses an older version (`STALE_VERSION`, state kept), treats
//! the same version as a no-op, and replaces its state with a newer one.
//! That makes every request safe to resend.
//!
//! # Frame format
//!
//! `u32 BE payload length | u8 flags | payload`; flags bit 0 means the
//! payload is `u32 BE uncompressed length | LZ4 block`. The payload is the
//! [postcard](https://docs.rs/postcard) encoding of a [`message::NodeMessage`]
//! or [`message::BrainMessage`]. Frames over the limit (1 MiB by default) are
//! refused before anything is allocated for them; see [`frame`].
//!
//! # Compatibility
//!
//! The version is `major.minor`, exchanged in Hello and Welcome. Peers
//! with different majors are refused with `VERSION_MISMATCH`; peers with the
//! same major speak the lower minor.
//!
//! postcard is positional — field names are not on the wire — so:
//!
//! - **Minor bump** (old peers keep working): append a variant at the end of
//!   an enum (a new message, request, reply, event or snapshot kind); add an
//!   error code. A side must not send a variant newer than the negotiated
//!   minor. A frame the receiver cannot decode anyway is skipped whole, not
//!   fatal (the framing says where it ends).
//! - **Adding an optional field** to an existing struct changes its encoding:
//!   do it by appending a new variant that carries the extended struct (e.g.
//!   `ApplyCallV2`) and sending it only to peers whose minor knows it — or
//!   with a major bump.
//! - **Major bump**: removing, reordering or retyping fields or variants,
//!   changing the frame format or the meaning of a field.
//! - Error codes are plain numbers so unknown ones still decode.

pub mod backoff;
pub mod brain;
pub mod frame;
pub mod message;
pub mod node;
pub mod snapshot;
pub mod store;
pub mod version;
#[cfg(feature = "tokio")]
mod wire;

pub use frame::{DecodeError, EncodeError, FrameDecoder, encode};
pub use message::{BrainMessage, NodeMessage};
pub use store::SnapshotStore;
pub use version::ProtocolVersion;
