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

/// For each letter, the range of `TABLE` holding the long names starting
/// with it, so classifying a name compares it with a few entries, not all.
const BY_FIRST_LETTER: [(u8, u8); 26] = {
    let mut idx = [(0u8, 0u8); 26];
    let mut i = 0;
    while i < TABLE.len() {
        let letter = (TABLE[i].1.as_bytes()[0] - b'a') as usize;
        if idx[letter].1 == 0 {
            idx[letter].0 = i as u8;
        }
        idx[letter].1 = i as u8 + 1;
        i += 1;
    }
    idx
};

/// Compact form letter -> name.
const BY_COMPACT: [HeaderName; 26] = {
    let mut idx = [HeaderName::Other; 26];
    let mut i = 0;
    while i < TABLE.len() {
        if let Some(c) = TABLE[i].3 {
            idx[(c - b'a') as usize] = TABLE[i].0;
        }
        i += 1;
    }
    idx
};

/// Canonical spelling by `HeaderName as usize` ("" for `Other`).
const CANONICAL: [&str; HeaderName::Other as usize + 1] = {
    let mut idx = [""; HeaderName::Other as usize + 1];
    let mut i = 0;
    while i < TABLE.len() {
        idx[TABLE[i].0 as usize] = TABLE[i].2;
        i += 1;
    }
    idx
};

impl HeaderName {
    /// Classifies a header name as it appeared on the wire (case-insensitive,
    /// compact forms included).
    pub fn from_wire(name: &[u8]) -> HeaderName {
        let Some(first) = name.first() else {
            return HeaderName::Other;
        };
        let letter = first.to_ascii_lowercase().wrapping_sub(b'a');
        if letter >= 26 {
            return HeaderName::Other;
        }
        if name.len() == 1 {
            return BY_COMPACT[letter as usize];
        }
        let (from, to) = BY_FIRST_LETTER[letter as usize];
        TABLE[from as usize..to as usize]
            .iter()
            .find(|e| e.1.len() == name.len() && e.1.as_bytes().eq_ignore_ascii_case(name))
            .map_or(HeaderName::Other, |e| e.0)
    }

    /// The canonical spelling used when tandem writes this header itself.
    /// `Other` has no spelling of its own; the message keeps the original.
    pub fn canonical(self) -> &'static str {
        CANONICAL[self as usize]
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
            assert_eq!(HeaderName::from_wire(e.1.to_uppercase().as_bytes()), e.0);
            assert_eq!(e.0.canonical(), e.2);
            if let Some(c) = e.3 {
                assert_eq!(HeaderName::from_wire(&[c]), e.0);
            }
        }
        assert_eq!(HeaderName::Other.canonical(), "");
    }

    #[test]
    fn table_is_grouped_by_first_letter() {
        // BY_FIRST_LETTER holds one range per letter: the names sharing a
        // first letter must be adjacent in TABLE.
        for (i, e) in TABLE.iter().enumerate() {
            let (from, to) = BY_FIRST_LETTER[usize::from(e.1.as_bytes()[0] - b'a')];
            assert!((from as usize..to as usize).contains(&i), "{}", e.1);
        }
        for name in [&b""[..], b"-", b"1x", b"\xff", b"Z", b"zz"] {
            assert_eq!(HeaderName::from_wire(name), HeaderName::Other);
        }
    }
}
