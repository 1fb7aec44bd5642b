//! PLACEHOLDER — replaced by the URI module (sip/sips/tel, RFC 3261 §19, RFC 3966, RFC 5118).
use std::fmt;
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Uri(String);
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct UriError(pub &'static str);
impl UriError {
    pub fn reason(&self) -> &str {
        self.0
    }
}
impl Uri {
    pub fn parse(s: &str) -> Result<Uri, UriError> {
        if s.contains(':') && !s.contains(['<', '>', ' ']) {
            Ok(Uri(s.to_string()))
        } else {
            Err(UriError("bad URI"))
        }
    }
    pub fn scheme(&self) -> &str {
        self.0.split(':').next().unwrap_or("")
    }
}
impl fmt::Display for Uri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}
