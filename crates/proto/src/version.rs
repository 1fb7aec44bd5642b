//! Protocol versions and the one rule that decides whether two peers can talk.

use serde::{Deserialize, Serialize};

/// A protocol version: peers with the same `major` interoperate; `minor`
/// only ever adds things (see the crate docs for what may change in each).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ProtocolVersion {
    pub major: u16,
    pub minor: u16,
}

impl ProtocolVersion {
    /// The version this build speaks.
    pub const CURRENT: ProtocolVersion = ProtocolVersion { major: 1, minor: 0 };

    /// The version two peers use once they have met: the same major, and the
    /// lower minor, so neither sends what the other cannot decode.
    pub fn negotiate(self, peer: ProtocolVersion) -> Result<ProtocolVersion, VersionError> {
        if self.major != peer.major {
            return Err(VersionError {
                ours: self,
                theirs: peer,
            });
        }
        Ok(ProtocolVersion {
            major: self.major,
            minor: self.minor.min(peer.minor),
        })
    }
}

impl std::fmt::Display for ProtocolVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)
    }
}

/// Two peers whose major versions differ cannot share a connection.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unsupported protocol version {theirs}: this side speaks {ours} (major versions must match)"
)]
pub struct VersionError {
    pub ours: ProtocolVersion,
    pub theirs: ProtocolVersion,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_major_takes_lower_minor() {
        let a = ProtocolVersion { major: 1, minor: 3 };
        let b = ProtocolVersion { major: 1, minor: 1 };
        assert_eq!(a.negotiate(b), Ok(b));
        assert_eq!(b.negotiate(a), Ok(b));
    }

    #[test]
    fn other_major_is_refused_with_both_versions_named() {
        let ours = ProtocolVersion { major: 1, minor: 0 };
        let theirs = ProtocolVersion { major: 2, minor: 0 };
        let err = ours.negotiate(theirs).expect_err("major mismatch");
        assert_eq!(
            err.to_string(),
            "unsupported protocol version 2.0: this side speaks 1.0 (major versions must match)"
        );
    }
}
