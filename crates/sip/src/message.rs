//! The message model: a start line, an ordered list of headers and a body.
//!
//! A parsed message keeps the bytes it came from and refers to them by
//! offset, so parsing allocates once for the header list and forwarding an
//! untouched header costs a copy of its bytes and nothing else. Headers
//! tandem adds or edits are stored as owned text beside them.

use std::fmt;
use std::net::SocketAddr;
use std::sync::OnceLock;

use bytes::Bytes;

use crate::header::{Header, HeaderName};
use crate::method::Method;
use crate::typed::{self, CSeq, Contact, NameAddr, NameAddrRef, Params, TypedError, Via};
use crate::uri::Uri;

/// Text inside a message: a span of the original bytes, or owned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Text {
    Span(u32, u32),
    Owned(Box<str>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Entry {
    pub(crate) name: HeaderName,
    /// `None`: written with the canonical spelling.
    pub(crate) raw_name: Option<Text>,
    pub(crate) value: Text,
    /// Where the line starts in `buf` when, while `value` is still the
    /// parsed `Text::Span(_, end)`, `buf[line..end + 2]` is exactly the line
    /// `write_to` writes (name, ": ", value, CRLF); else [`NO_LINE`]. Lets
    /// serializing copy runs of untouched lines at once.
    pub(crate) line: u32,
}

pub(crate) const NO_LINE: u32 = u32::MAX;

#[derive(Debug, Clone)]
pub struct RequestLine {
    pub(crate) method: Method,
    /// Set when the line is built or the URI replaced. A parsed request
    /// fills it from `raw_uri` on first use: the parser validated that text
    /// in full, and a proxy that forwards the request never needs the owned
    /// form (building it cost a fifth of parsing the bench INVITE).
    /// Boxed: the owned URI is large and rarely built, and a message is
    /// moved several times between parsing and its user.
    pub(crate) uri: OnceLock<Box<Uri>>,
    /// The URI as written: as received (untouched until the URI is
    /// replaced), or as `uri` formats when built.
    pub(crate) raw_uri: Option<Text>,
}

impl RequestLine {
    /// The URI is formatted here once: serializing (and sizing) a request
    /// then copies text instead of formatting the URI each time, which
    /// cost more than the rest of writing a small request.
    pub(crate) fn new(method: Method, uri: Uri) -> RequestLine {
        RequestLine {
            method,
            raw_uri: Some(Text::Owned(uri.to_string().into())),
            uri: OnceLock::from(Box::new(uri)),
        }
    }
}

impl PartialEq for RequestLine {
    fn eq(&self, other: &RequestLine) -> bool {
        // With `raw_uri` set, the URI follows from that text (which the
        // message compares with its buffer), whether built yet or not.
        self.method == other.method
            && self.raw_uri == other.raw_uri
            && (self.raw_uri.is_some() || self.uri.get() == other.uri.get())
    }
}

impl Eq for RequestLine {}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusLine {
    pub(crate) code: u16,
    /// `None`: the standard phrase of `code` (responses are built on every
    /// transaction; this spares them an allocation).
    pub(crate) reason: Option<Text>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StartLine {
    Request(RequestLine),
    Response(StatusLine),
}

/// A SIP request or response.
#[derive(Debug, PartialEq, Eq)]
pub struct Message {
    pub(crate) buf: Bytes,
    pub(crate) start: StartLine,
    pub(crate) headers: Vec<Entry>,
    pub(crate) body: Bytes,
    pub(crate) checked: Checked,
}

impl Clone for Message {
    /// A copy with room for two more header lines: a copy is usually made
    /// to be sent on, and sending a request adds its Via first (growing an
    /// exactly-full list moved every line and cost more than the copy).
    fn clone(&self) -> Message {
        let mut headers = Vec::with_capacity(self.headers.len() + 2);
        headers.extend(self.headers.iter().cloned());
        Message {
            buf: self.buf.clone(),
            start: self.start.clone(),
            headers,
            body: self.body.clone(),
            checked: self.checked,
        }
    }
}

/// What the parser found that stays true until a header is edited (every
/// header edit resets it). Not part of a message's value: equality ignores
/// it.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Checked {
    /// The first From and To values are as the parser accepted them: the
    /// tag accessors skip checks the parser made (the transaction layer
    /// reads tags for every message).
    pub(crate) fields: bool,
    /// `buf[start..end]` is every header line exactly as `write_to` writes
    /// them (each entry's [`Entry::line`], back to back): serializing copies
    /// it at once instead of walking the entries.
    pub(crate) lines: Option<(u32, u32)>,
    /// `buf[start..end]` is the whole message exactly as `write_to` writes
    /// it (set by the parser only for a message it read that way; reset
    /// with the rest, and by `set_request_uri`).
    pub(crate) whole: Option<(u32, u32)>,
    /// The first Via line checked whole as one value, and where its parts
    /// are: `top_via` reads them instead of parsing the line again.
    pub(crate) top_via: Option<typed::ViaSpans>,
    /// Where the parameters of the first From and To values are in `buf`
    /// ((0, 0): none), as the parser split them: tag reads skip the split.
    pub(crate) name_addr_params: Option<[(u32, u32); 2]>,
    /// The first CSeq's number and where its method token is in `buf`.
    pub(crate) cseq: Option<(u32, (u32, u32))>,
}

impl PartialEq for Checked {
    fn eq(&self, _: &Checked) -> bool {
        true
    }
}

impl Eq for Checked {}

/// The standard reason phrase for a status code (RFC 3261 §21 and later).
pub fn reason_phrase(code: u16) -> &'static str {
    match code {
        100 => "Trying",
        180 => "Ringing",
        181 => "Call Is Being Forwarded",
        182 => "Queued",
        183 => "Session Progress",
        200 => "OK",
        202 => "Accepted",
        300 => "Multiple Choices",
        301 => "Moved Permanently",
        302 => "Moved Temporarily",
        305 => "Use Proxy",
        380 => "Alternative Service",
        400 => "Bad Request",
        401 => "Unauthorized",
        402 => "Payment Required",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        406 => "Not Acceptable",
        407 => "Proxy Authentication Required",
        408 => "Request Timeout",
        410 => "Gone",
        413 => "Request Entity Too Large",
        414 => "Request-URI Too Long",
        415 => "Unsupported Media Type",
        416 => "Unsupported URI Scheme",
        420 => "Bad Extension",
        421 => "Extension Required",
        423 => "Interval Too Brief",
        480 => "Temporarily Unavailable",
        481 => "Call/Transaction Does Not Exist",
        482 => "Loop Detected",
        483 => "Too Many Hops",
        484 => "Address Incomplete",
        485 => "Ambiguous",
        486 => "Busy Here",
        487 => "Request Terminated",
        488 => "Not Acceptable Here",
        491 => "Request Pending",
        493 => "Undecipherable",
        500 => "Server Internal Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Server Time-out",
        505 => "Version Not Supported",
        513 => "Message Too Large",
        600 => "Busy Everywhere",
        603 => "Decline",
        604 => "Does Not Exist Anywhere",
        606 => "Not Acceptable",
        _ => "Unknown",
    }
}

impl Message {
    /// A new request with no headers.
    pub fn request(method: Method, uri: Uri) -> Message {
        Message {
            buf: Bytes::new(),
            start: StartLine::Request(RequestLine::new(method, uri)),
            headers: Vec::with_capacity(12),
            body: Bytes::new(),
            checked: Checked::default(),
        }
    }

    /// A new response with no headers; `reason` defaults to the standard phrase.
    pub fn response(code: u16, reason: Option<&str>) -> Message {
        Message {
            buf: Bytes::new(),
            start: StartLine::Response(StatusLine {
                code,
                reason: reason.map(|r| Text::Owned(r.into())),
            }),
            headers: Vec::with_capacity(8),
            body: Bytes::new(),
            checked: Checked::default(),
        }
    }

    /// A response to `req` per RFC 3261 §8.2.6: Via, From, To, Call-ID, CSeq
    /// and Timestamp copied, Content-Length 0. The caller adds a To tag when
    /// the response creates state (`set_to_tag`).
    pub fn response_to(req: &Message, code: u16, reason: Option<&str>) -> Message {
        let mut resp = Message::response(code, reason);
        // Share the request's bytes: the echoed headers are spans into them,
        // so answering a request copies no header text.
        resp.buf = req.buf.clone();
        // The From, To and CSeq it copies are the request's, over the same
        // buffer.
        resp.checked.fields = req.checked.fields;
        resp.checked.name_addr_params = req.checked.name_addr_params;
        resp.checked.cseq = req.checked.cseq;
        let mut seen = [false; 4];
        for e in &req.headers {
            // One each of the single-valued headers, even when the request
            // (wrongly) carried two.
            let single = match e.name {
                HeaderName::From => Some(0),
                HeaderName::To => Some(1),
                HeaderName::CallId => Some(2),
                HeaderName::CSeq => Some(3),
                _ => None,
            };
            if let Some(i) = single {
                if seen[i] {
                    continue;
                }
                seen[i] = true;
            }
            if matches!(
                e.name,
                HeaderName::Via
                    | HeaderName::From
                    | HeaderName::To
                    | HeaderName::CallId
                    | HeaderName::CSeq
                    | HeaderName::Timestamp
            ) {
                resp.headers.push(Entry {
                    name: e.name,
                    raw_name: None,
                    value: e.value.clone(),
                    // Same bytes, but only if the wire spelling was canonical.
                    line: if e.raw_name.is_none() {
                        e.line
                    } else {
                        NO_LINE
                    },
                });
            }
        }
        // Not `push_header`, which would forget what `checked` knows of the
        // From, To and CSeq copied above (a Content-Length changes none).
        resp.headers.push(Entry {
            name: HeaderName::ContentLength,
            raw_name: None,
            value: Text::Owned("0".into()),
            line: NO_LINE,
        });
        resp
    }

    /// Where `part`, a piece of a header value read from `buf`, lies in
    /// `buf`; `None` for text elsewhere (owned values).
    pub(crate) fn span_of(&self, part: &str) -> Option<(u32, u32)> {
        let at = (part.as_ptr() as usize).wrapping_sub(self.buf.as_ptr() as usize);
        (at <= self.buf.len() && self.buf.len() - at >= part.len())
            .then(|| (at as u32, (at + part.len()) as u32))
    }

    pub(crate) fn text<'a>(&'a self, t: &'a Text) -> &'a str {
        match t {
            Text::Span(s, e) => self.span_text(*s, *e),
            Text::Owned(s) => s,
        }
    }

    /// The text of a `Text::Span(s, e)` (see the SAFETY note).
    fn span_text(&self, s: u32, e: u32) -> &str {
        let bytes = self.buf.get(s as usize..e as usize).unwrap_or(b"");
        debug_assert!(std::str::from_utf8(bytes).is_ok(), "span not UTF-8");
        // SAFETY: `Text::Span` is only made by the parser (`parse.rs`,
        // `span` and the unfolding of continuation lines), over the
        // header section of the buffer it then stores in `buf`, after
        // checking that whole section is UTF-8 (`split_fast`,
        // `split_checked`), and with both ends at ASCII bytes (line
        // ends, ':', white space, SP in the start line), hence at
        // char boundaries; or from the spans in `Checked`, which
        // `validate` takes (`span_of`) of `&str` pieces of such
        // values, so they end at char boundaries too. A span is only ever read against that
        // buffer: `response_to` copies spans together with `buf`.
        // Every header read used to re-validate here (measured).
        unsafe { std::str::from_utf8_unchecked(bytes) }
    }

    fn reason_of<'a>(&'a self, s: &'a StatusLine) -> &'a str {
        s.reason
            .as_ref()
            .map_or_else(|| reason_phrase(s.code), |t| self.text(t))
    }

    /// See [`Entry::line`].
    fn verbatim_line(&self, e: &Entry) -> Option<std::ops::Range<usize>> {
        match e.value {
            Text::Span(_, end) if e.line != NO_LINE => {
                let line = e.line as usize..end as usize + 2;
                (line.end <= self.buf.len()).then_some(line)
            }
            _ => None,
        }
    }

    fn bytes_of<'a>(&'a self, t: &'a Text) -> &'a [u8] {
        match t {
            Text::Span(s, e) => self.buf.get(*s as usize..*e as usize).unwrap_or(b""),
            Text::Owned(s) => s.as_bytes(),
        }
    }

    pub fn start_line(&self) -> &StartLine {
        &self.start
    }

    pub fn is_request(&self) -> bool {
        matches!(self.start, StartLine::Request(_))
    }

    /// The request method, or `None` for a response.
    pub fn method(&self) -> Option<&Method> {
        match &self.start {
            StartLine::Request(r) => Some(&r.method),
            StartLine::Response(_) => None,
        }
    }

    pub fn request_uri(&self) -> Option<&Uri> {
        match &self.start {
            StartLine::Request(r) => Some(self.uri_of(r)),
            StartLine::Response(_) => None,
        }
    }

    fn uri_of<'a>(&'a self, r: &'a RequestLine) -> &'a Uri {
        r.uri.get_or_init(|| {
            let text = r.raw_uri.as_ref().map_or("", |t| self.text(t));
            // The parser accepted this text, so this cannot fail; the
            // fallback only keeps the accessor panic-free.
            Box::new(crate::uri::UriRef::parse(text).map_or_else(
                |_| {
                    Uri::Other(crate::uri::AbsoluteUri {
                        scheme: "invalid".into(),
                        rest: String::new(),
                    })
                },
                |u| u.to_uri(),
            ))
        })
    }

    /// The Request-URI exactly as it will be written.
    pub fn request_uri_text(&self) -> Option<std::borrow::Cow<'_, str>> {
        match &self.start {
            StartLine::Request(r) => Some(match &r.raw_uri {
                Some(t) => std::borrow::Cow::Borrowed(self.text(t)),
                None => std::borrow::Cow::Owned(self.uri_of(r).to_string()),
            }),
            StartLine::Response(_) => None,
        }
    }

    pub fn set_request_uri(&mut self, uri: Uri) {
        if let StartLine::Request(r) = &mut self.start {
            *r = RequestLine::new(r.method.clone(), uri);
            self.checked.whole = None;
        }
    }

    pub fn status(&self) -> Option<u16> {
        match &self.start {
            StartLine::Response(s) => Some(s.code),
            StartLine::Request(_) => None,
        }
    }

    pub fn reason(&self) -> Option<&str> {
        match &self.start {
            StartLine::Response(s) => Some(self.reason_of(s)),
            StartLine::Request(_) => None,
        }
    }

    /// Every header line in order.
    pub fn headers(&self) -> impl Iterator<Item = Header<'_>> {
        self.headers.iter().map(|e| Header {
            name: e.name,
            raw_name: match &e.raw_name {
                Some(t) => self.text(t),
                None => e.name.canonical(),
            },
            value: self.text(&e.value),
        })
    }

    pub fn header_count(&self) -> usize {
        self.headers.len()
    }

    /// The value of the first header line with this name.
    pub fn header(&self, name: HeaderName) -> Option<&str> {
        self.headers
            .iter()
            .find(|e| e.name == name)
            .map(|e| self.text(&e.value))
    }

    /// The values of every header line with this name, as written (a line may
    /// hold several comma-separated values: see [`Message::values`]).
    pub fn header_lines(&self, name: HeaderName) -> impl Iterator<Item = &str> {
        self.headers
            .iter()
            .filter(move |e| e.name == name)
            .map(|e| self.text(&e.value))
    }

    /// The first header with this spelling, case-insensitively; for headers
    /// the stack has no name for.
    pub fn header_by_name(&self, raw_name: &str) -> Option<&str> {
        let known = HeaderName::from_wire(raw_name.as_bytes());
        self.headers
            .iter()
            .find(|e| {
                if known != HeaderName::Other {
                    e.name == known
                } else {
                    e.name == HeaderName::Other
                        && e.raw_name
                            .as_ref()
                            .is_some_and(|t| self.text(t).eq_ignore_ascii_case(raw_name))
                }
            })
            .map(|e| self.text(&e.value))
    }

    /// Every list element of a multi-valued header across all its lines
    /// (RFC 3261 §7.3.1: `Via: a, b` equals two Via lines).
    pub fn values(&self, name: HeaderName) -> impl Iterator<Item = &str> {
        self.header_lines(name).flat_map(typed::split_list)
    }

    /// Appends a header line.
    pub fn push_header(&mut self, name: HeaderName, value: impl Into<Box<str>>) {
        self.checked = Checked::default();
        self.headers.push(Entry {
            name,
            raw_name: None,
            value: Text::Owned(value.into()),
            line: NO_LINE,
        });
    }

    /// Appends a header by its spelling (an unknown name is kept as given).
    pub fn push_header_raw(&mut self, raw_name: &str, value: impl Into<Box<str>>) {
        self.checked = Checked::default();
        let name = HeaderName::from_wire(raw_name.as_bytes());
        self.headers.push(Entry {
            name,
            raw_name: (name == HeaderName::Other || raw_name != name.canonical())
                .then(|| Text::Owned(raw_name.into())),
            value: Text::Owned(value.into()),
            line: NO_LINE,
        });
    }

    /// Inserts a header line above every other line of the same name, or at
    /// the top when there is none (a proxy's Via, a Record-Route).
    pub fn prepend_header(&mut self, name: HeaderName, value: impl Into<Box<str>>) {
        self.checked = Checked::default();
        let at = self
            .headers
            .iter()
            .position(|e| e.name == name)
            .unwrap_or(0);
        self.headers.insert(
            at,
            Entry {
                name,
                raw_name: None,
                value: Text::Owned(value.into()),
                line: NO_LINE,
            },
        );
    }

    /// Replaces the first line of this name (keeping its position) and removes
    /// the others; appends when there is none.
    pub fn set_header(&mut self, name: HeaderName, value: impl Into<Box<str>>) {
        self.checked = Checked::default();
        let value = Text::Owned(value.into());
        match self.headers.iter().position(|e| e.name == name) {
            Some(i) => {
                self.headers[i].value = value;
                let mut seen = false;
                self.headers.retain(|e| {
                    if e.name != name {
                        return true;
                    }
                    let keep = !seen;
                    seen = true;
                    keep
                });
            }
            None => self.headers.push(Entry {
                name,
                raw_name: None,
                value,
                line: NO_LINE,
            }),
        }
    }

    /// Removes every line of this name; returns how many there were.
    pub fn remove_header(&mut self, name: HeaderName) -> usize {
        self.checked = Checked::default();
        let before = self.headers.len();
        self.headers.retain(|e| e.name != name);
        before - self.headers.len()
    }

    /// Removes the first list element of the first line of this name — the
    /// top Via when a response goes upstream, the top Route when it is
    /// consumed.
    pub fn remove_first_value(&mut self, name: HeaderName) -> bool {
        self.checked = Checked::default();
        let Some(i) = self.headers.iter().position(|e| e.name == name) else {
            return false;
        };
        let line = self.text(&self.headers[i].value);
        let mut items = typed::split_list(line);
        items.next();
        let rest: Vec<&str> = items.collect();
        if rest.is_empty() {
            self.headers.remove(i);
        } else {
            let joined = rest.join(", ");
            self.headers[i].value = Text::Owned(joined.into());
        }
        true
    }

    pub fn body(&self) -> &Bytes {
        &self.body
    }

    /// Sets the body and Content-Length (and Content-Type when given; an
    /// empty body removes Content-Type).
    pub fn set_body(&mut self, body: impl Into<Bytes>, content_type: Option<&str>) {
        self.body = body.into();
        self.set_header(HeaderName::ContentLength, self.body.len().to_string());
        match content_type {
            Some(ct) => self.set_header(HeaderName::ContentType, ct),
            None if self.body.is_empty() => {
                self.remove_header(HeaderName::ContentType);
            }
            None => {}
        }
    }

    // Typed accessors. Each parses on demand; the parser has already checked
    // that the mandatory ones are present and well formed.

    pub fn call_id(&self) -> Option<&str> {
        self.header(HeaderName::CallId)
    }

    pub fn cseq(&self) -> Option<CSeq> {
        if let Some((seq, method)) = self.checked.cseq {
            // As the parser split the first CSeq value (untouched since).
            return Some(CSeq {
                seq,
                method: Method::from_token(self.span_text(method.0, method.1)),
            });
        }
        self.header(HeaderName::CSeq)
            .and_then(|v| CSeq::parse(v).ok())
    }

    pub fn from_header(&self) -> Result<NameAddr<'_>, TypedError> {
        NameAddr::parse(self.header(HeaderName::From).unwrap_or(""))
    }

    pub fn to_header(&self) -> Result<NameAddr<'_>, TypedError> {
        NameAddr::parse(self.header(HeaderName::To).unwrap_or(""))
    }

    /// From, with its URI left in the header text (nothing is copied).
    pub fn from_addr(&self) -> Result<NameAddrRef<'_>, TypedError> {
        NameAddrRef::parse(self.header(HeaderName::From).unwrap_or(""))
    }

    /// To, with its URI left in the header text (nothing is copied).
    pub fn to_addr(&self) -> Result<NameAddrRef<'_>, TypedError> {
        NameAddrRef::parse(self.header(HeaderName::To).unwrap_or(""))
    }

    pub fn from_tag(&self) -> Option<&str> {
        self.tag_of(HeaderName::From)
    }

    pub fn to_tag(&self) -> Option<&str> {
        self.tag_of(HeaderName::To)
    }

    fn tag_of(&self, name: HeaderName) -> Option<&str> {
        if self.checked.fields {
            let at = usize::from(name == HeaderName::To);
            if let Some(spans) = self.checked.name_addr_params {
                let (s, e) = spans[at];
                return Params::checked(self.span_text(s, e)).value("tag");
            }
            return typed::checked_tag(self.header(name).unwrap_or(""));
        }
        let value = self.header(name).unwrap_or("");
        NameAddrRef::parse(value).ok().and_then(|n| n.tag())
    }

    /// Adds `;tag=` to the To header when it has none (a UAS creating a dialog).
    pub fn set_to_tag(&mut self, tag: &str) {
        let Some(i) = self.headers.iter().position(|e| e.name == HeaderName::To) else {
            return;
        };
        if self.to_tag().is_some() {
            return;
        }
        let current = self.text(&self.headers[i].value);
        // A value ending in ';' (accepted as an empty parameter list) takes
        // the tag without a second ';', which would not parse.
        let current = current.trim_end_matches([' ', '\t']);
        let sep = if current.ends_with(';') { "" } else { ";" };
        let mut value = String::with_capacity(current.len() + sep.len() + 4 + tag.len());
        for part in [current, sep, "tag=", tag] {
            value.push_str(part);
        }
        self.headers[i].value = Text::Owned(value.into());
        self.checked = Checked::default();
    }

    pub fn top_via(&self) -> Result<Via<'_>, TypedError> {
        // A first line that parses whole holds one value (see `validate`).
        let line = self.header(HeaderName::Via).unwrap_or("");
        // The parser found the parts of that line (untouched since).
        if let Some(spans) = &self.checked.top_via {
            return Ok(Via::from_spans(line, spans));
        }
        Via::parse(line).or_else(|_| Via::parse(self.values(HeaderName::Via).next().unwrap_or("")))
    }

    pub fn vias(&self) -> impl Iterator<Item = Result<Via<'_>, TypedError>> {
        self.values(HeaderName::Via).map(Via::parse)
    }

    pub fn contacts(&self) -> impl Iterator<Item = Result<Contact<'_>, TypedError>> {
        self.values(HeaderName::Contact).map(Contact::parse)
    }

    pub fn max_forwards(&self) -> Option<u32> {
        self.header(HeaderName::MaxForwards)
            .and_then(|v| typed::parse_u32_max(v.trim(), 255))
    }

    pub fn expires(&self) -> Option<u32> {
        self.header(HeaderName::Expires)
            .and_then(|v| typed::parse_u32_max(v.trim(), u32::MAX))
    }

    pub fn content_type(&self) -> Option<&str> {
        self.header(HeaderName::ContentType)
    }

    /// RFC 3261 §18.2.1 and RFC 3581: records where a request really came
    /// from in its top Via — `received` when the address differs from the
    /// sent-by host (always, when the client asked for `rport`), and the
    /// source port in an empty `rport`.
    pub fn stamp_received(&mut self, source: SocketAddr) {
        self.checked = Checked::default();
        let Some(i) = self.headers.iter().position(|e| e.name == HeaderName::Via) else {
            return;
        };
        let line = self.text(&self.headers[i].value);
        let Some(top) = typed::split_list(line).next() else {
            return;
        };
        let Ok(via) = Via::parse(top) else {
            return;
        };
        let wants_rport = via.rport() == Some(None);
        let ip = source.ip();
        let same_host = match &via.host {
            crate::uri::Host::V4(a) => std::net::IpAddr::V4(*a) == ip,
            crate::uri::Host::V6(a) => std::net::IpAddr::V6(*a) == ip,
            crate::uri::Host::Domain(_) => false,
        };
        if same_host && !wants_rport {
            return;
        }
        let mut stamped = String::with_capacity(top.len() + 40);
        let mut has_received = false;
        // Rebuild the parameter list, filling rport and replacing received.
        let (head, _) = top.split_once(';').unwrap_or((top, ""));
        stamped.push_str(head.trim_end());
        for (name, value) in via.params.iter() {
            stamped.push(';');
            if name.eq_ignore_ascii_case("rport") && wants_rport {
                stamped.push_str(&format!("rport={}", source.port()));
            } else if name.eq_ignore_ascii_case("received") {
                has_received = true;
                stamped.push_str(&format!("received={ip}"));
            } else {
                stamped.push_str(name);
                if let Some(v) = value {
                    stamped.push('=');
                    stamped.push_str(v);
                }
            }
        }
        if !has_received {
            stamped.push_str(&format!(";received={ip}"));
        }
        let offset = top.as_ptr() as usize - line.as_ptr() as usize;
        let mut value = String::with_capacity(line.len() + 40);
        value.push_str(&line[..offset]);
        value.push_str(&stamped);
        value.push_str(&line[offset + top.len()..]);
        self.headers[i].value = Text::Owned(value.into());
    }

    /// The number of bytes [`Message::write_to`] will write.
    pub fn encoded_len(&self) -> usize {
        let start = match &self.start {
            StartLine::Request(r) => {
                r.method.as_str().len()
                    + 1
                    + match &r.raw_uri {
                        Some(t) => self.bytes_of(t).len(),
                        None => self.uri_of(r).to_string().len(),
                    }
                    + 10
            }
            // "SIP/2.0 " + three digits + SP + reason + CRLF.
            StartLine::Response(s) => 14 + self.reason_of(s).len(),
        };
        let headers: usize = self
            .headers
            .iter()
            .map(|e| {
                let name = match &e.raw_name {
                    Some(t) => self.bytes_of(t).len(),
                    None => e.name.canonical().len(),
                };
                name + 2 + self.bytes_of(&e.value).len() + 2
            })
            .sum();
        start + headers + 2 + self.body.len()
    }

    /// Serializes the message onto `out`.
    pub fn write_to(&self, out: &mut Vec<u8>) {
        // A hint, not the exact size: a parsed or answered message is about
        // as long as the buffer it refers to, and computing `encoded_len`
        // walked every header once more (a third of serializing the bench
        // INVITE). `to_bytes` still sizes its buffer exactly.
        out.reserve(self.buf.len().max(512));
        self.write_unreserved(out);
    }

    /// [`Message::write_to`] into a buffer already sized for the message.
    fn write_unreserved(&self, out: &mut Vec<u8>) {
        if let Some(whole) = self
            .checked
            .whole
            .and_then(|(s, e)| self.buf.get(s as usize..e as usize))
        {
            out.extend_from_slice(whole);
            return;
        }
        match &self.start {
            StartLine::Request(r) => {
                out.extend_from_slice(r.method.as_str().as_bytes());
                out.push(b' ');
                match &r.raw_uri {
                    Some(t) => out.extend_from_slice(self.bytes_of(t)),
                    None => out.extend_from_slice(self.uri_of(r).to_string().as_bytes()),
                }
                out.extend_from_slice(b" SIP/2.0\r\n");
            }
            StartLine::Response(s) => {
                out.extend_from_slice(b"SIP/2.0 ");
                let code = s.code.min(999);
                out.extend_from_slice(&[
                    b'0' + (code / 100) as u8,
                    b'0' + (code / 10 % 10) as u8,
                    b'0' + (code % 10) as u8,
                    b' ',
                ]);
                out.extend_from_slice(self.reason_of(s).as_bytes());
                out.extend_from_slice(b"\r\n");
            }
        }
        if let Some(lines) = self
            .checked
            .lines
            .and_then(|(s, e)| self.buf.get(s as usize..e as usize))
        {
            out.extend_from_slice(lines);
            out.extend_from_slice(b"\r\n");
            out.extend_from_slice(&self.body);
            return;
        }
        // Untouched parsed lines sit in `buf` exactly as they are written:
        // copy each run of adjacent ones at once.
        let mut run = 0..0;
        for e in &self.headers {
            if let Some(line) = self.verbatim_line(e) {
                if run.is_empty() || run.end != line.start {
                    out.extend_from_slice(self.buf.get(run).unwrap_or_default());
                    run = line;
                } else {
                    run.end = line.end;
                }
                continue;
            }
            out.extend_from_slice(self.buf.get(run).unwrap_or_default());
            run = 0..0;
            match &e.raw_name {
                Some(t) => out.extend_from_slice(self.bytes_of(t)),
                None => out.extend_from_slice(e.name.canonical().as_bytes()),
            }
            out.extend_from_slice(b": ");
            out.extend_from_slice(self.bytes_of(&e.value));
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(self.buf.get(run).unwrap_or_default());
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(&self.body);
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.encoded_len());
        self.write_unreserved(&mut out);
        out
    }
}

impl fmt::Display for Message {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&String::from_utf8_lossy(&self.to_bytes()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse::parse_datagram;

    const INVITE: &str = "INVITE sip:bob@biloxi.example.com SIP/2.0\r\n\
Via: SIP/2.0/UDP 192.0.2.4:5060;branch=z9hG4bKnashds8;rport\r\n\
v: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bKbis\r\n\
Max-Forwards: 70\r\n\
To: Bob <sip:bob@biloxi.example.com>\r\n\
From: Alice <sip:alice@atlanta.example.com>;tag=1928301774\r\n\
Call-ID: a84b4c76e66710\r\n\
CSeq: 314159 INVITE\r\n\
X-Custom:   kept  exactly \r\n\
Content-Length: 0\r\n\r\n";

    fn invite() -> Message {
        parse_datagram(INVITE.as_bytes().to_vec()).expect("parse")
    }

    #[test]
    fn response_to_copies_the_rfc_headers() {
        let req = invite();
        let mut resp = Message::response_to(&req, 180, None);
        resp.set_to_tag("b0b");
        let text = String::from_utf8(resp.to_bytes()).expect("utf8");
        assert!(text.starts_with("SIP/2.0 180 Ringing\r\n"), "{text}");
        let vias: Vec<_> = resp.values(HeaderName::Via).collect();
        assert_eq!(vias.len(), 2);
        assert_eq!(resp.to_tag(), Some("b0b"));
        assert_eq!(resp.from_tag(), Some("1928301774"));
        assert_eq!(resp.cseq().map(|c| c.seq), Some(314159));
        assert!(!text.contains("X-Custom"));
        assert!(!text.contains("Max-Forwards"));
        // A second tag is never added.
        resp.set_to_tag("other");
        assert_eq!(resp.to_tag(), Some("b0b"));
    }

    #[test]
    fn unknown_header_forwarded_byte_exact() {
        let req = invite();
        let out = String::from_utf8(req.to_bytes()).expect("utf8");
        assert!(out.contains("\r\nX-Custom: kept  exactly\r\n"), "{out}");
        assert!(out.contains("\r\nv: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bKbis\r\n"));
        assert_eq!(out.len(), req.encoded_len());
        // Serializing is idempotent: a forwarded message forwards again unchanged.
        let again = parse_datagram(out.clone().into_bytes()).expect("reparse");
        assert_eq!(String::from_utf8(again.to_bytes()).expect("utf8"), out);
    }

    #[test]
    fn to_tag_after_a_trailing_semicolon() {
        // Found by fuzzing: `To: <sip:b@x>;` parses, but the tag was
        // appended as `;;tag=`, which does not.
        let text = INVITE.replace("To: Bob <sip:bob@biloxi.example.com>", "To: <sip:b@x>;");
        let req = parse_datagram(text.into_bytes()).expect("parse");
        let mut resp = Message::response_to(&req, 180, None);
        resp.set_to_tag("b0b");
        assert_eq!(resp.header(HeaderName::To), Some("<sip:b@x>;tag=b0b"));
        let again = parse_datagram(resp.to_bytes()).expect("reparse");
        assert_eq!(again.to_tag(), Some("b0b"));
    }

    #[test]
    fn encoded_len_is_exact_for_responses() {
        // Found by fuzzing: the status line was counted one byte short.
        let mut resp = Message::response_to(&invite(), 486, None);
        assert_eq!(resp.encoded_len(), resp.to_bytes().len());
        resp = Message::response(200, Some(""));
        assert_eq!(resp.encoded_len(), resp.to_bytes().len());
    }

    #[test]
    fn stamp_received_fills_rport() {
        let mut req = invite();
        req.stamp_received("198.51.100.7:40001".parse().expect("addr"));
        let via = req.top_via().expect("via");
        assert_eq!(via.received(), Some("198.51.100.7"));
        assert_eq!(via.rport(), Some(Some(40001)));
        assert_eq!(via.branch(), Some("z9hG4bKnashds8"));
        // The second Via is untouched.
        assert_eq!(
            req.values(HeaderName::Via).nth(1),
            Some("SIP/2.0/UDP 192.0.2.1;branch=z9hG4bKbis")
        );
    }

    #[test]
    fn stamp_received_skips_matching_host_without_rport() {
        let text = INVITE.replace(";rport", "");
        let mut req = parse_datagram(text.into_bytes()).expect("parse");
        req.stamp_received("192.0.2.4:5060".parse().expect("addr"));
        assert_eq!(req.top_via().expect("via").received(), None);
        req.stamp_received("192.0.2.99:5060".parse().expect("addr"));
        assert_eq!(req.top_via().expect("via").received(), Some("192.0.2.99"));
    }

    #[test]
    fn header_edits() {
        let mut req = invite();
        req.prepend_header(HeaderName::Via, "SIP/2.0/TCP proxy.example;branch=z9hG4bKp");
        assert_eq!(req.top_via().expect("via").transport, "TCP");
        assert!(req.remove_first_value(HeaderName::Via));
        assert_eq!(req.top_via().expect("via").branch(), Some("z9hG4bKnashds8"));
        req.set_header(HeaderName::MaxForwards, "69");
        assert_eq!(req.max_forwards(), Some(69));
        req.set_body(Bytes::from_static(b"v=0\r\n"), Some("application/sdp"));
        assert_eq!(req.header(HeaderName::ContentLength), Some("5"));
        assert_eq!(req.content_type(), Some("application/sdp"));
        let again = parse_datagram(req.to_bytes()).expect("reparse");
        assert_eq!(again.body().as_ref(), b"v=0\r\n");
        assert_eq!(again.header_by_name("x-custom"), Some("kept  exactly"));
    }

    #[test]
    fn verbatim_runs_serialize_like_line_by_line() {
        let plain = |m: &Message| {
            let mut m = m.clone();
            for e in &mut m.headers {
                e.line = NO_LINE;
            }
            m.checked = Checked::default();
            m.to_bytes()
        };
        let odd = INVITE
            .replace("Max-Forwards: 70", "Max-Forwards:70")
            .replace("Call-ID: a84b", "Call-ID:  a84b")
            .replace("CSeq: 314159 INVITE", "CSeq: 314159 INVITE \t")
            .replace("From: Alice", "f: Alice");
        let lf = INVITE.replace("\r\n", "\n");
        for text in [INVITE.to_owned(), odd, lf] {
            let mut req = parse_datagram(text.into_bytes()).expect("parse");
            assert_eq!(req.to_bytes(), plain(&req));
            assert_eq!(req.to_bytes().len(), req.encoded_len());
            let mut resp = Message::response_to(&req, 180, None);
            resp.set_to_tag("b0b");
            assert_eq!(resp.to_bytes(), plain(&resp));
            req.set_header(HeaderName::MaxForwards, "69");
            req.stamp_received("198.51.100.7:40001".parse().expect("addr"));
            assert_eq!(req.to_bytes(), plain(&req));
            assert_eq!(req.to_bytes().len(), req.encoded_len());
        }
    }

    #[test]
    fn standard_reason_phrases_are_not_copied() {
        let resp = Message::response_to(&invite(), 486, None);
        assert!(matches!(
            &resp.start,
            StartLine::Response(StatusLine { reason: None, .. })
        ));
        assert_eq!(resp.reason(), Some("Busy Here"));
        assert!(resp.to_bytes().starts_with(b"SIP/2.0 486 Busy Here\r\n"));
        assert_eq!(resp.to_bytes().len(), resp.encoded_len());
        assert_eq!(Message::response(486, Some("Busy")).reason(), Some("Busy"));
    }

    #[test]
    fn request_uri_is_built_on_first_use() {
        let a = invite();
        let b = invite();
        assert_eq!(
            a.request_uri(),
            Some(&Uri::parse("sip:bob@biloxi.example.com").expect("uri"))
        );
        // Built in one, not yet in the other: still the same message.
        assert_eq!(a, b);
        let mut c = b.clone();
        c.set_request_uri(Uri::parse("sip:carol@chicago.example.com").expect("uri"));
        assert_ne!(b, c);
        assert_eq!(
            c.request_uri_text().as_deref(),
            Some("sip:carol@chicago.example.com")
        );
        assert!(
            String::from_utf8(c.to_bytes())
                .expect("utf8")
                .starts_with("INVITE sip:carol@chicago.example.com SIP/2.0\r\n")
        );
    }

    #[test]
    fn built_request_serializes() {
        let mut req = Message::request(
            Method::Options,
            Uri::parse("sip:carrier.example").expect("uri"),
        );
        req.push_header(
            HeaderName::Via,
            "SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK1",
        );
        req.push_header_raw("P-Asserted-Identity", "<sip:+15551234@x>");
        req.set_body(Bytes::new(), None);
        let text = String::from_utf8(req.to_bytes()).expect("utf8");
        assert_eq!(
            text,
            "OPTIONS sip:carrier.example SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK1\r\n\
P-Asserted-Identity: <sip:+15551234@x>\r\nContent-Length: 0\r\n\r\n"
        );
    }
}
