//! Header names: the ones tandem reads, their compact forms (RFC 3261 §7.3.3
//! and later RFCs), and a catch-all that keeps any other name byte-exact.

/// A header name the stack knows, or `Other` (the original spelling is kept
/// beside it in the message, so unknown headers forward untouched).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HeaderName {
    Accept,
    AcceptContact,
    Allow,
    AllowEvents,
    Authorization,
    CallId,
    Contact,
    ContentDisposition,
    ContentEncoding,
    ContentLength,
    ContentType,
    CSeq,
    Event,
    Expires,
    From,
    Identity,
    MaxForwards,
    MinExpires,
    MinSe,
    ProxyAuthenticate,
    ProxyAuthorization,
    ProxyRequire,
    RecordRoute,
    ReferTo,
    ReferredBy,
    RejectContact,
    RequestDisposition,
    Require,
    RetryAfter,
    Route,
    RSeq,
    RAck,
    Server,
    SessionExpires,
    Subject,
    Supported,
    Timestamp,
    To,
    Unsupported,
    UserAgent,
    Via,
    WwwAuthenticate,
    Other,
}

/// (lower-case long form, canonical spelling, compact letter)
const TABLE: &[(HeaderName, &str, &str, Option<u8>)] = &[
    (HeaderName::Accept, "accept", "Accept", None),
    (
        HeaderName::AcceptContact,
        "accept-contact",
        "Accept-Contact",
        Some(b'a'),
    ),
    (HeaderName::Allow, "allow", "Allow", None),
    (
        HeaderName::AllowEvents,
        "allow-events",
        "Allow-Events",
        Some(b'u'),
    ),
    (
        HeaderName::Authorization,
        "authorization",
        "Authorization",
        None,
    ),
    (HeaderName::CallId, "call-id", "Call-ID", Some(b'i')),
    (HeaderName::Contact, "contact", "Contact", Some(b'm')),
    (
        HeaderName::ContentDisposition,
        "content-disposition",
        "Content-Disposition",
        None,
    ),
    (
        HeaderName::ContentEncoding,
        "content-encoding",
        "Content-Encoding",
        Some(b'e'),
    ),
    (
        HeaderName::ContentLength,
        "content-length",
        "Content-Length",
        Some(b'l'),
    ),
    (
        HeaderName::ContentType,
        "content-type",
        "Content-Type",
        Some(b'c'),
    ),
    (HeaderName::CSeq, "cseq", "CSeq", None),
    (HeaderName::Event, "event", "Event", Some(b'o')),
    (HeaderName::Expires, "expires", "Expires", None),
    (HeaderName::From, "from", "From", Some(b'f')),
    (HeaderName::Identity, "identity", "Identity", Some(b'y')),
    (
        HeaderName::MaxForwards,
        "max-forwards",
        "Max-Forwards",
        None,
    ),
    (HeaderName::MinExpires, "min-expires", "Min-Expires", None),
    (HeaderName::MinSe, "min-se", "Min-SE", None),
    (
        HeaderName::ProxyAuthenticate,
        "proxy-authenticate",
        "Proxy-Authenticate",
        None,
    ),
    (
        HeaderName::ProxyAuthorization,
        "proxy-authorization",
        "Proxy-Authorization",
        None,
    ),
    (
        HeaderName::ProxyRequire,
        "proxy-require",
        "Proxy-Require",
        None,
    ),
    (
        HeaderName::RecordRoute,
        "record-route",
        "Record-Route",
        None,
    ),
    (HeaderName::ReferTo, "refer-to", "Refer-To", Some(b'r')),
    (
        HeaderName::ReferredBy,
        "referred-by",
        "Referred-By",
        Some(b'b'),
    ),
    (
        HeaderName::RejectContact,
        "reject-contact",
        "Reject-Contact",
        Some(b'j'),
    ),
    (
        HeaderName::RequestDisposition,
        "request-disposition",
        "Request-Disposition",
        Some(b'd'),
    ),
    (HeaderName::Require, "require", "Require", None),
    (HeaderName::RetryAfter, "retry-after", "Retry-After", None),
    (HeaderName::Route, "route", "Route", None),
    (HeaderName::RSeq, "rseq", "RSeq", None),
    (HeaderName::RAck, "rack", "RAck", None),
    (HeaderName::Server, "server", "Server", None),
    (
        HeaderName::SessionExpires,
        "session-expires",
        "Session-Expires",
        Some(b'x'),
    ),
    (HeaderName::Subject, "subject", "Subject", Some(b's')),
    (HeaderName::Supported, "supported", "Supported", Some(b'k')),
    (HeaderName::Timestamp, "timestamp", "Timestamp", None),
    (HeaderName::To, "to", "To", Some(b't')),
    (HeaderName::Unsupported, "unsupported", "Unsupported", None),
    (HeaderName::UserAgent, "user-agent", "User-Agent", None),
    (HeaderName::Via, "via", "Via", Some(b'v')),
    (
        HeaderName::WwwAuthenticate,
        "www-authenticate",
        "WWW-Authenticate",
        None,
    ),
];

impl HeaderName {
    /// Classifies a header name as it appeared on the wire (case-insensitive,
    /// compact forms included).
    pub fn from_wire(name: &[u8]) -> HeaderName {
        if let [c] = name {
            let c = c.to_ascii_lowercase();
            return TABLE
                .iter()
                .find(|e| e.3 == Some(c))
                .map_or(HeaderName::Other, |e| e.0);
        }
        // Common names first: these decide the parse cost of a typical INVITE.
        TABLE
            .iter()
            .find(|e| e.1.len() == name.len() && e.1.as_bytes().eq_ignore_ascii_case(name))
            .map_or(HeaderName::Other, |e| e.0)
    }

    /// The canonical spelling used when tandem writes this header itself.
    /// `Other` has no spelling of its own; the message keeps the original.
    pub fn canonical(self) -> &'static str {
        TABLE.iter().find(|e| e.0 == self).map_or("", |e| e.2)
    }

    /// Headers that RFC 3261 allows only once per message.
    pub fn is_single_valued(self) -> bool {
        matches!(
            self,
            HeaderName::CallId
                | HeaderName::CSeq
                | HeaderName::From
                | HeaderName::To
                | HeaderName::MaxForwards
                | HeaderName::ContentLength
                | HeaderName::ContentType
                | HeaderName::Expires
        )
    }
}

/// A borrowed view of one header line as stored in a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header<'a> {
    pub name: HeaderName,
    /// The name as it will be written: the wire spelling for parsed headers,
    /// the canonical one for headers tandem added.
    pub raw_name: &'a str,
    pub value: &'a str,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compact_and_long_forms_classify_alike() {
        assert_eq!(HeaderName::from_wire(b"v"), HeaderName::Via);
        assert_eq!(HeaderName::from_wire(b"V"), HeaderName::Via);
        assert_eq!(HeaderName::from_wire(b"vIa"), HeaderName::Via);
        assert_eq!(HeaderName::from_wire(b"i"), HeaderName::CallId);
        assert_eq!(HeaderName::from_wire(b"CALL-id"), HeaderName::CallId);
        assert_eq!(HeaderName::from_wire(b"l"), HeaderName::ContentLength);
        assert_eq!(
            HeaderName::from_wire(b"NewFangledHeader"),
            HeaderName::Other
        );
        assert_eq!(HeaderName::from_wire(b"q"), HeaderName::Other);
    }

    #[test]
    fn every_known_name_has_a_spelling() {
        for e in TABLE {
            assert_eq!(HeaderName::from_wire(e.2.as_bytes()), e.0);
            assert_eq!(e.0.canonical(), e.2);
        }
    }
}
