//! The datagram parser.
