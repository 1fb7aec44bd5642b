//! SIP for tandem: the message model, parser and serializer (RFC 3261), URIs
//! (sip, sips, tel), SDP offer/answer (RFC 4566/3264), digest authentication
//! (RFC 7616/2617), and transactions and dialogs as sans-IO state machines.
//!
//! Nothing here does I/O or reads a clock: callers pass bytes and instants in
//! and get bytes, events and deadlines out.

pub mod auth;
pub mod dialog;
pub mod framing;
pub mod header;
pub mod ids;
pub mod message;
pub mod method;
pub mod parse;
pub mod sdp;
pub mod transaction;
pub mod typed;
pub mod uas;
pub mod uri;

pub use header::{Header, HeaderName};
pub use message::{Message, StartLine, reason_phrase};
pub use method::Method;
pub use parse::{ParseError, parse_datagram, parse_stream_frame};
pub use uri::Uri;
