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

/// The longest long form ("content-disposition", "request-disposition").
const MAX_KNOWN_LEN: usize = 19;

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
        // Lower-case into a stack buffer and match: the compiler switches on
        // the length first, so a name costs a short loop and one or two
        // compares. This runs for every header line of every message.
        let mut buf = [0u8; MAX_KNOWN_LEN];
        let Some(lower) = buf.get_mut(..name.len()) else {
            return HeaderName::Other;
        };
        for (d, s) in lower.iter_mut().zip(name) {
            *d = s.to_ascii_lowercase();
        }
        match &*lower {
            b"accept" => HeaderName::Accept,
            b"accept-contact" | b"a" => HeaderName::AcceptContact,
            b"allow" => HeaderName::Allow,
            b"allow-events" | b"u" => HeaderName::AllowEvents,
            b"authorization" => HeaderName::Authorization,
            b"call-id" | b"i" => HeaderName::CallId,
            b"contact" | b"m" => HeaderName::Contact,
            b"content-disposition" => HeaderName::ContentDisposition,
            b"content-encoding" | b"e" => HeaderName::ContentEncoding,
            b"content-length" | b"l" => HeaderName::ContentLength,
            b"content-type" | b"c" => HeaderName::ContentType,
            b"cseq" => HeaderName::CSeq,
            b"event" | b"o" => HeaderName::Event,
            b"expires" => HeaderName::Expires,
            b"from" | b"f" => HeaderName::From,
            b"identity" | b"y" => HeaderName::Identity,
            b"max-forwards" => HeaderName::MaxForwards,
            b"min-expires" => HeaderName::MinExpires,
            b"min-se" => HeaderName::MinSe,
            b"proxy-authenticate" => HeaderName::ProxyAuthenticate,
            b"proxy-authorization" => HeaderName::ProxyAuthorization,
            b"proxy-require" => HeaderName::ProxyRequire,
            b"record-route" => HeaderName::RecordRoute,
            b"refer-to" | b"r" => HeaderName::ReferTo,
            b"referred-by" | b"b" => HeaderName::ReferredBy,
            b"reject-contact" | b"j" => HeaderName::RejectContact,
            b"request-disposition" | b"d" => HeaderName::RequestDisposition,
            b"require" => HeaderName::Require,
            b"retry-after" => HeaderName::RetryAfter,
            b"route" => HeaderName::Route,
            b"rseq" => HeaderName::RSeq,
            b"rack" => HeaderName::RAck,
            b"server" => HeaderName::Server,
            b"session-expires" | b"x" => HeaderName::SessionExpires,
            b"subject" | b"s" => HeaderName::Subject,
            b"supported" | b"k" => HeaderName::Supported,
            b"timestamp" => HeaderName::Timestamp,
            b"to" | b"t" => HeaderName::To,
            b"unsupported" => HeaderName::Unsupported,
            b"user-agent" => HeaderName::UserAgent,
            b"via" | b"v" => HeaderName::Via,
            b"www-authenticate" => HeaderName::WwwAuthenticate,
            _ => HeaderName::Other,
        }
    }

    /// [`HeaderName::from_wire`] for the parser, with whether the name is
    /// spelled exactly as [`HeaderName::canonical`] (then the message need
    /// not keep the wire spelling). Most senders use the canonical spelling,
    /// so matching it as is first skips lower-casing and a compare.
    pub(crate) fn classify(name: &[u8]) -> (HeaderName, bool) {
        let exact = match name {
            b"Accept" => HeaderName::Accept,
            b"Accept-Contact" => HeaderName::AcceptContact,
            b"Allow" => HeaderName::Allow,
            b"Allow-Events" => HeaderName::AllowEvents,
            b"Authorization" => HeaderName::Authorization,
            b"Call-ID" => HeaderName::CallId,
            b"Contact" => HeaderName::Contact,
            b"Content-Disposition" => HeaderName::ContentDisposition,
            b"Content-Encoding" => HeaderName::ContentEncoding,
            b"Content-Length" => HeaderName::ContentLength,
            b"Content-Type" => HeaderName::ContentType,
            b"CSeq" => HeaderName::CSeq,
            b"Event" => HeaderName::Event,
            b"Expires" => HeaderName::Expires,
            b"From" => HeaderName::From,
            b"Identity" => HeaderName::Identity,
            b"Max-Forwards" => HeaderName::MaxForwards,
            b"Min-Expires" => HeaderName::MinExpires,
            b"Min-SE" => HeaderName::MinSe,
            b"Proxy-Authenticate" => HeaderName::ProxyAuthenticate,
            b"Proxy-Authorization" => HeaderName::ProxyAuthorization,
            b"Proxy-Require" => HeaderName::ProxyRequire,
            b"Record-Route" => HeaderName::RecordRoute,
            b"Refer-To" => HeaderName::ReferTo,
            b"Referred-By" => HeaderName::ReferredBy,
            b"Reject-Contact" => HeaderName::RejectContact,
            b"Request-Disposition" => HeaderName::RequestDisposition,
            b"Require" => HeaderName::Require,
            b"Retry-After" => HeaderName::RetryAfter,
            b"Route" => HeaderName::Route,
            b"RSeq" => HeaderName::RSeq,
            b"RAck" => HeaderName::RAck,
            b"Server" => HeaderName::Server,
            b"Session-Expires" => HeaderName::SessionExpires,
            b"Subject" => HeaderName::Subject,
            b"Supported" => HeaderName::Supported,
            b"Timestamp" => HeaderName::Timestamp,
            b"To" => HeaderName::To,
            b"Unsupported" => HeaderName::Unsupported,
            b"User-Agent" => HeaderName::UserAgent,
            b"Via" => HeaderName::Via,
            b"WWW-Authenticate" => HeaderName::WwwAuthenticate,
            _ => HeaderName::Other,
        };
        if exact != HeaderName::Other {
            return (exact, true);
        }
        // Whatever this finds is spelled otherwise, or the match above
        // would have found it.
        (HeaderName::from_wire(name), false)
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
    fn classify_reports_canonical_spellings() {
        for e in TABLE {
            assert_eq!(HeaderName::classify(e.2.as_bytes()), (e.0, true));
            let upper = e.1.to_uppercase();
            assert_eq!(
                HeaderName::classify(upper.as_bytes()),
                (e.0, upper == e.2),
                "{upper}"
            );
            assert_eq!(HeaderName::classify(e.1.as_bytes()), (e.0, e.1 == e.2));
        }
        assert_eq!(
            HeaderName::classify(b"X-Custom"),
            (HeaderName::Other, false)
        );
    }

    #[test]
    fn match_agrees_with_the_table() {
        // The match in `from_wire` and TABLE are two spellings of one list.
        assert_eq!(TABLE.iter().map(|e| e.1.len()).max(), Some(MAX_KNOWN_LEN));
        for c in b'a'..=b'z' {
            let want = TABLE
                .iter()
                .find(|e| e.3 == Some(c))
                .map_or(HeaderName::Other, |e| e.0);
            assert_eq!(HeaderName::from_wire(&[c]), want, "{}", c as char);
        }
        for e in TABLE {
            assert_eq!(HeaderName::from_wire(e.1.as_bytes()), e.0);
            // (A one-letter remainder would be a compact form.)
            let shorter = Some(&e.1[1..]).filter(|s| s.len() > 1);
            for near in [format!("{}x", e.1), format!("x{}", e.1)]
                .into_iter()
                .chain(shorter.map(str::to_owned))
            {
                assert_eq!(
                    HeaderName::from_wire(near.as_bytes()),
                    HeaderName::Other,
                    "{near}"
                );
            }
        }
        for name in [&b""[..], b"-", b"1x", b"\xff", b"Z", b"zz", &[b'a'; 40]] {
            assert_eq!(HeaderName::from_wire(name), HeaderName::Other);
        }
    }
}
