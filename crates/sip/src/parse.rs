//! The message parser (RFC 3261 §7 and §25): start line, header lines with
//! folding, Content-Length framing, and the checks without which a request
//! cannot be answered or routed.
//!
//! A message that fails comes back as a [`ParseError`] whose reason phrase
//! names what was wrong and which, for a request whose headers split cleanly,
//! can build the 400 to send back.

use std::borrow::Cow;
use std::sync::OnceLock;

use bytes::Bytes;

use crate::header::HeaderName;
use crate::message::{Checked, Entry, Message, NO_LINE, RequestLine, StartLine, StatusLine, Text};
use crate::method::Method;
use crate::typed::{self, CSeq, ContactRef, NameAddrRef, Via, ViaSpans};
use crate::uri::{Uri, UriRef};

/// At most this many header lines per message: bounds memory per message
/// whatever a peer sends.
pub const MAX_HEADERS: usize = 256;

/// How the message arrived, which decides how Content-Length is read
/// (RFC 3261 §18.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// UDP: Content-Length may be absent (the body is the rest of the
    /// datagram); bytes past it are ignored; a body shorter than it is an error.
    Datagram,
    /// TCP, TLS: the frame was cut by the stream framer and Content-Length
    /// is mandatory. WebSocket messages also use this.
    Stream,
}

/// A message that could not be accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{status} {reason}")]
pub struct ParseError {
    /// The status to answer a request with: 400, or 505 for a SIP version
    /// other than 2.0.
    pub status: u16,
    /// A short reason phrase naming what was wrong.
    pub reason: Cow<'static, str>,
    /// The message as far as it was read, when its start line and header
    /// lines split cleanly.
    pub partial: Option<Box<Message>>,
}

impl ParseError {
    fn new(reason: &'static str) -> ParseError {
        ParseError {
            status: 400,
            reason: Cow::Borrowed(reason),
            partial: None,
        }
    }

    fn owned(reason: String) -> ParseError {
        ParseError {
            status: 400,
            reason: Cow::Owned(reason),
            partial: None,
        }
    }

    /// The response to send for a malformed request, when one can be sent:
    /// never for responses or ACKs (RFC 3261 §17.1.1.3), and only when the
    /// headers a response must echo are there.
    pub fn response(&self) -> Option<Message> {
        let req = self.partial.as_deref()?;
        match req.method() {
            None | Some(Method::Ack) => return None,
            Some(_) => {}
        }
        for h in [
            HeaderName::Via,
            HeaderName::From,
            HeaderName::To,
            HeaderName::CallId,
            HeaderName::CSeq,
        ] {
            req.header(h)?;
        }
        // The reason phrase is TEXT-UTF8: keep it on one line.
        let reason: String = self
            .reason
            .chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect();
        let mut resp = Message::response_to(req, self.status, Some(&reason));
        resp.set_to_tag(&crate::ids::new_tag());
        // A broken Via, From, To, Call-ID or CSeq is echoed as it came (RFC
        // 3261 §8.2.6.2): the client matches the 400 to its request by
        // branch and CSeq, and RFC 4475 asks for the 400 all the same. It
        // goes back to the source address, so a broken Via does not stop it.
        Some(resp)
    }
}

/// Parses one UDP datagram.
pub fn parse_datagram(buf: impl Into<Bytes>) -> Result<Message, ParseError> {
    parse(buf.into(), Framing::Datagram)
}

/// Parses one message cut from a stream by [`crate::framing`], or one
/// WebSocket message.
pub fn parse_stream_frame(buf: impl Into<Bytes>) -> Result<Message, ParseError> {
    parse(buf.into(), Framing::Stream)
}

fn is_wsp(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

/// Splits `data[from..]` into lines ending in LF (a CR before it is dropped).
/// Returns (start, end-without-CRLF, next-line-start).
fn next_line(data: &[u8], from: usize) -> Option<(usize, usize, usize)> {
    let rest = data.get(from..)?;
    let nl = memchr::memchr(b'\n', rest)?;
    let mut end = from + nl;
    if end > from && data[end - 1] == b'\r' {
        end -= 1;
    }
    Some((from, end, from + nl + 1))
}

fn span(start: usize, end: usize) -> Text {
    // Datagrams and frames are bounded far below 4 GiB by the transports.
    Text::Span(start as u32, end as u32)
}

pub fn parse(buf: Bytes, framing: Framing) -> Result<Message, ParseError> {
    if buf.len() > u32::MAX as usize {
        return Err(ParseError::new("Message too large"));
    }
    let data: &[u8] = &buf;
    // RFC 3261 §7.5: CRLFs before the start line are ignored.
    let pos = data
        .iter()
        .position(|&b| b != b'\r' && b != b'\n')
        .ok_or_else(|| ParseError::new("Empty message"))?;

    let (start, start_err, headers, body_start, fast) = match split_fast(data, pos) {
        Some((start, headers, body_start, fast)) => (start, None, headers, body_start, Some(fast)),
        None => {
            let (start, err, headers, body_start) = split_checked(data, pos)?;
            (start, err, headers, body_start, None)
        }
    };
    // Where the headers the checks read are; the fast split found it on the
    // way (tested to agree with `Summary::of`).
    let (summary, lines) = match fast {
        Some(f) => f,
        None => (Summary::of(&headers), None),
    };

    let mut msg = Message {
        buf: Bytes::new(),
        start,
        headers,
        body: Bytes::new(),
        checked: Checked::default(),
    };

    if let Some(e) = start_err {
        return Err(with_partial(e, &msg, &buf));
    }

    // Content-Length and the body.
    let mut content_length: Option<u32> = None;
    // Nearly always one line, found by the summary: others need the search.
    let content_lengths: &[Entry] = match summary.counts[CONTENT_LENGTH] {
        0 => &[],
        1 => std::slice::from_ref(&msg.headers[usize::from(summary.first[CONTENT_LENGTH])]),
        _ => &msg.headers,
    };
    for e in content_lengths
        .iter()
        .filter(|e| e.name == HeaderName::ContentLength)
    {
        let v = match &e.value {
            Text::Span(s, e) => data.get(*s as usize..*e as usize).unwrap_or_default(),
            Text::Owned(s) => s.as_bytes(),
        };
        // Nearly always plain digits; anything else goes the general way.
        let n = match digits_u32(v) {
            Some(n) => n,
            None => typed::parse_u32_max(std::str::from_utf8(v).unwrap_or("").trim(), u32::MAX)
                .ok_or_else(|| {
                    with_partial(ParseError::new("Invalid Content-Length"), &msg, &buf)
                })?,
        };
        if content_length.is_some_and(|c| c != n) {
            return Err(with_partial(
                ParseError::new("Conflicting Content-Length headers"),
                &msg,
                &buf,
            ));
        }
        content_length = Some(n);
    }
    let available = data.len() - body_start;
    let body_len = match (framing, content_length) {
        (Framing::Datagram, None) => available,
        (Framing::Datagram, Some(n)) if n as usize <= available => n as usize,
        (Framing::Datagram, Some(_)) => {
            return Err(with_partial(
                ParseError::new("Content-Length larger than the body"),
                &msg,
                &buf,
            ));
        }
        (Framing::Stream, None) => {
            return Err(with_partial(
                ParseError::new("Missing Content-Length on a stream transport"),
                &msg,
                &buf,
            ));
        }
        (Framing::Stream, Some(n)) if n as usize == available => available,
        (Framing::Stream, Some(_)) => {
            return Err(with_partial(
                ParseError::new("Content-Length does not match the body"),
                &msg,
                &buf,
            ));
        }
    };
    msg.body = buf.slice(body_start..body_start + body_len);
    let whole = verbatim_whole(data, pos, &msg.start, lines, body_start, body_len);
    msg.buf = buf;

    let found = match validate(&msg, &summary) {
        Ok(found) => found,
        Err(reason) => {
            let mut err = ParseError::owned(reason);
            err.partial = Some(Box::new(msg));
            return Err(err);
        }
    };
    msg.checked = Checked {
        fields: true,
        lines,
        whole,
        top_via: found.top_via,
        name_addr_params: found.name_addr_params,
        cseq: found.cseq,
    };
    Ok(msg)
}

/// Where the whole message sits in `data` when writing it back gives
/// exactly those bytes: a start line as the fast split reads it (a status
/// line with its space before the reason), ending in CRLF; header lines all
/// verbatim (`lines`, right after it); a CRLF blank line; the body. Then
/// serializing is one copy.
fn verbatim_whole(
    data: &[u8],
    pos: usize,
    start: &StartLine,
    lines: Option<(u32, u32)>,
    body_start: usize,
    body_len: usize,
) -> Option<(u32, u32)> {
    let (first, blank) = lines?;
    // The start line's '\n' is right before the first header line.
    let nl = (first as usize).checked_sub(1)?;
    let crlf = nl > pos && data[nl - 1] == b'\r';
    // "SIP/2.0 200" without a space is written back with one.
    let full_status = !matches!(start, StartLine::Response(_)) || nl - 1 - pos > 11;
    let blank = blank as usize;
    let blank_crlf = data.get(blank..blank + 2) == Some(b"\r\n") && body_start == blank + 2;
    (crlf && full_status && blank_crlf).then_some((pos as u32, (body_start + body_len) as u32))
}

/// `v` as a number when it is nothing but 1 to 9 decimal digits (which
/// cannot exceed `u32::MAX`).
fn digits_u32(v: &[u8]) -> Option<u32> {
    if v.is_empty() || v.len() > 9 {
        return None;
    }
    v.iter().try_fold(0u32, |n, &d| {
        d.is_ascii_digit().then(|| n * 10 + u32::from(d - b'0'))
    })
}

/// Where the header lines sit in the buffer when every one is marked for
/// verbatim copying and they follow each other: one copy writes them all.
/// (The fast split finds this on the way; the checked split marks no line.
/// Kept as the reference the tests compare with.)
#[cfg(test)]
fn verbatim_lines(headers: &[Entry]) -> Option<(u32, u32)> {
    let mut run: Option<(u32, u32)> = None;
    for e in headers {
        let Text::Span(_, end) = e.value else {
            return None;
        };
        if e.line == NO_LINE {
            return None;
        }
        run = match run {
            None => Some((e.line, end + 2)),
            Some((start, prev)) if prev == e.line => Some((start, end + 2)),
            Some(_) => return None,
        };
    }
    run
}

type Split = (StartLine, Option<ParseError>, Vec<Entry>, usize);

/// Splits the start line and header lines with every check, folding
/// included: (start line, the start line's error when its headers are still
/// worth reading, headers, where the body starts).
fn split_checked(data: &[u8], mut pos: usize) -> Result<Split, ParseError> {
    // Find the end of the header section first, so that one UTF-8 check
    // covers every span handed out later.
    let head_start = pos;
    let mut body_start = None;
    let mut scan = pos;
    while let Some((s, e, next)) = next_line(data, scan) {
        if s == e {
            body_start = Some(next);
            break;
        }
        scan = next;
    }
    let body_start = body_start.ok_or_else(|| ParseError::new("Header section not terminated"))?;
    if std::str::from_utf8(&data[head_start..body_start]).is_err() {
        return Err(ParseError::new("Header section is not valid UTF-8"));
    }

    let (ls, le, next) =
        next_line(data, pos).ok_or_else(|| ParseError::new("Missing start line"))?;
    // A broken request line still leaves headers worth reading: with them
    // the request can be answered with a 400 (or 505) naming the fault.
    let (start, start_err) = match parse_start_line(data, ls, le) {
        Ok(start) => (start, None),
        Err(e) => match placeholder_request_line(&data[ls..le]) {
            Some(start) => (start, Some(e)),
            None => return Err(e),
        },
    };
    pos = next;

    let mut headers: Vec<Entry> = Vec::with_capacity(16);
    let mut folded: Vec<usize> = Vec::new();
    while let Some((s, e, next)) = next_line(data, pos) {
        pos = next;
        if s == e {
            break;
        }
        if is_wsp(data[s]) {
            // A continuation line (folding): extend the previous value.
            let index = headers.len().wrapping_sub(1);
            let Some(last) = headers.last_mut() else {
                return Err(ParseError::new("Continuation line before any header"));
            };
            let mut end = e;
            while end > s && is_wsp(data[end - 1]) {
                end -= 1;
            }
            if let Text::Span(vs, ve) = &mut last.value
                && data[s..end].iter().any(|b| !is_wsp(*b))
            {
                if *vs == *ve {
                    // The value began on this line.
                    let first = s + data[s..end].iter().take_while(|b| is_wsp(**b)).count();
                    *vs = first as u32;
                }
                *ve = end as u32;
                if folded.last() != Some(&index) {
                    folded.push(index);
                }
            }
            continue;
        }
        if headers.len() == MAX_HEADERS {
            return Err(ParseError::new("Too many header lines"));
        }
        headers.push(header_entry(data, s, e)?);
    }

    // Known headers are unfolded so typed parsers see one line; unknown ones
    // keep their bytes (folding is legal on the wire) to forward untouched.
    for i in folded {
        if headers[i].name == HeaderName::Other {
            continue;
        }
        if let Text::Span(vs, ve) = headers[i].value {
            let raw = std::str::from_utf8(&data[vs as usize..ve as usize]).unwrap_or("");
            headers[i].value = Text::Owned(unfold(raw).into());
        }
    }

    Ok((start, start_err, headers, body_start))
}

/// One header line `data[s..e]` (not a continuation) as an entry, or what is
/// wrong with it.
fn header_entry(data: &[u8], s: usize, e: usize) -> Result<Entry, ParseError> {
    let colon = memchr::memchr(b':', &data[s..e])
        .map(|c| s + c)
        .ok_or_else(|| ParseError::new("Header line without a colon"))?;
    let mut name_end = colon;
    while name_end > s && is_wsp(data[name_end - 1]) {
        name_end -= 1;
    }
    if !is_header_name(&data[s..name_end]) {
        return Err(ParseError::new("Malformed header name"));
    }
    // Folding may yet stretch the value over lines: no verbatim copy.
    Ok(entry(data, s, name_end, colon + 1, e, false))
}

fn is_header_name(b: &[u8]) -> bool {
    !b.is_empty() && b.iter().all(|&c| typed::is_token_char(c))
}

/// The entry for a header line whose name is `data[s..name_end]` and whose
/// value (untrimmed) is `data[vs..e]`; `crlf`: the line ends in CRLF right
/// at `e` and may be marked for verbatim copying.
#[inline(always)]
fn entry(data: &[u8], s: usize, name_end: usize, mut vs: usize, e: usize, crlf: bool) -> Entry {
    while vs < e && is_wsp(data[vs]) {
        vs += 1;
    }
    let mut ve = e;
    while ve > vs && is_wsp(data[ve - 1]) {
        ve -= 1;
    }
    let name_bytes = &data[s..name_end];
    let (name, canonical) = HeaderName::classify(name_bytes);
    // The line is written back as name, ": ", value, CRLF; when that is how
    // it came, serializing can copy it whole. (A value starting two bytes
    // after the name with a space before it has the colon right after it.)
    let verbatim = crlf && ve == e && vs == name_end + 2 && data[name_end + 1] == b' ';
    Entry {
        name,
        raw_name: (!canonical).then(|| span(s, name_end)),
        value: span(vs, ve),
        line: if verbatim { s as u32 } else { NO_LINE },
    }
}

/// The common case in one pass over the lines: a start line that parses,
/// header lines that do, no folding, and an ASCII (or UTF-8) header section.
/// `None` for anything else, which [`split_checked`] then handles and names:
/// this accepts nothing that it would not, and splits it the same way.
fn split_fast(data: &[u8], pos: usize) -> Option<FastSplit> {
    let line_end = |s: usize, nl: usize| {
        if nl > s && data[nl - 1] == b'\r' {
            nl - 1
        } else {
            nl
        }
    };
    let mut marks = Marks::new(data, pos);
    let (nl, _) = marks.next(false)?;
    let start = fast_start_line(data, pos, line_end(pos, nl))?;
    let mut headers: Vec<Entry> = Vec::with_capacity(16);
    let mut summary = Summary::default();
    let mut all_verbatim = true;
    let first_line = nl + 1;
    let mut s = nl + 1;
    let body_start = loop {
        // The line's first ':' or, when it has none, its end.
        let (colon, is_colon) = marks.next(true)?;
        if !is_colon {
            if s == line_end(s, colon) {
                break colon + 1;
            }
            return None; // a line without a colon
        }
        let (nl, _) = marks.next(false)?;
        let e = line_end(s, nl);
        if headers.len() == MAX_HEADERS {
            return None;
        }
        if is_wsp(data[s]) {
            return None; // folding
        }
        let mut name_end = colon;
        while name_end > s && is_wsp(data[name_end - 1]) {
            name_end -= 1;
        }
        let entry = entry(data, s, name_end, colon + 1, e, e != nl);
        // A name the stack knows is made of token characters: only others
        // need the check.
        if entry.name == HeaderName::Other && !is_header_name(&data[s..name_end]) {
            return None;
        }
        summary.note(headers.len(), entry.name);
        all_verbatim &= entry.line != NO_LINE;
        headers.push(entry);
        s = nl + 1;
    };
    // Every line verbatim: they follow each other up to the blank line
    // (`s`), which is what `verbatim_lines` finds walking the entries.
    let lines = (all_verbatim && !headers.is_empty()).then_some((first_line as u32, s as u32));
    // Every span handed out lies in this section. ASCII is checked with a
    // loop the compiler vectorizes; full UTF-8 only when that fails.
    let head = &data[pos..body_start];
    let ascii = head.iter().fold(0u8, |acc, &b| acc | b) < 0x80;
    (ascii || std::str::from_utf8(head).is_ok()).then_some((
        start,
        headers,
        body_start,
        (summary, lines),
    ))
}

type FastSplit = (StartLine, Vec<Entry>, usize, (Summary, Option<(u32, u32)>));

/// The headers allowed once (see [`SINGLE`]).
const SINGLE: [HeaderName; 8] = [
    HeaderName::CallId,
    HeaderName::CSeq,
    HeaderName::From,
    HeaderName::To,
    HeaderName::MaxForwards,
    HeaderName::ContentLength,
    HeaderName::ContentType,
    HeaderName::Expires,
];
const CONTENT_LENGTH: usize = 5;

/// Where the headers the checks read are: how many lines of each of
/// [`SINGLE`] and where the first is, the first Via, the number of Contact
/// lines. Gathered while splitting, so the checks search nothing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Summary {
    counts: [u8; 8],
    first: [u16; 8],
    top_via: Option<u16>,
    contacts: u16,
}

impl Summary {
    fn of(headers: &[Entry]) -> Summary {
        let mut s = Summary::default();
        for (at, e) in headers.iter().enumerate() {
            s.note(at, e.name);
        }
        s
    }

    /// Header `at` (at most [`MAX_HEADERS`], so it fits) is named `name`.
    #[inline(always)]
    fn note(&mut self, at: usize, name: HeaderName) {
        let i = match name {
            HeaderName::Via => {
                self.top_via.get_or_insert(at as u16);
                return;
            }
            HeaderName::Contact => {
                self.contacts += 1;
                return;
            }
            HeaderName::CallId => 0,
            HeaderName::CSeq => 1,
            HeaderName::From => 2,
            HeaderName::To => 3,
            HeaderName::MaxForwards => 4,
            HeaderName::ContentLength => CONTENT_LENGTH,
            HeaderName::ContentType => 6,
            HeaderName::Expires => 7,
            _ => return,
        };
        if self.counts[i] == 0 {
            self.first[i] = at as u16;
        }
        self.counts[i] = self.counts[i].saturating_add(1);
    }
}

/// The line ends and colons of a header section, found 64 bytes at a time
/// as bit masks: one pass of vector compares instead of a search per line
/// and a byte loop per header name.
struct Marks<'a> {
    data: &'a [u8],
    /// Where the current 64-byte chunk starts.
    at: usize,
    /// '\n' and ':' in the chunk, bits already passed cleared.
    newlines: u64,
    colons: u64,
}

impl<'a> Marks<'a> {
    fn new(data: &'a [u8], from: usize) -> Marks<'a> {
        let (newlines, colons) = load(data, from);
        Marks {
            data,
            at: from,
            newlines,
            colons,
        }
    }

    /// The next '\n' (or, with `colon`, the next '\n' or ':'), and whether
    /// it is a ':'. Everything before it is passed over for good.
    #[inline(always)]
    fn next(&mut self, colon: bool) -> Option<(usize, bool)> {
        loop {
            let m = if colon {
                self.newlines | self.colons
            } else {
                self.newlines
            };
            if m != 0 {
                let bit = m.trailing_zeros();
                let is_colon = self.newlines >> bit & 1 == 0;
                let keep = (!0u64 << bit) << 1;
                self.newlines &= keep;
                self.colons &= keep;
                return Some((self.at + bit as usize, is_colon));
            }
            self.at += 64;
            if self.at >= self.data.len() {
                return None;
            }
            // By value, not through `&mut self`: the masks stay in
            // registers in the caller's loop.
            (self.newlines, self.colons) = load(self.data, self.at);
        }
    }
}

/// The marks of the 64 bytes of `data` from `at`.
#[inline(never)]
fn load(data: &[u8], at: usize) -> (u64, u64) {
    let rest = data.get(at..).unwrap_or_default();
    match rest.first_chunk::<64>() {
        Some(chunk) => masks(chunk),
        None => {
            // The last bytes: zeros are neither mark.
            let mut chunk = [0u8; 64];
            chunk[..rest.len()].copy_from_slice(rest);
            masks(&chunk)
        }
    }
}

/// Bit i set where `chunk[i]` is '\n' (first mask) or ':' (second).
#[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
fn masks(chunk: &[u8; 64]) -> (u64, u64) {
    // SAFETY: this code is only built for targets with SSE2 enabled (the
    // cfg above; every x86_64 CPU has it), which is all `masks_sse2` needs.
    unsafe { masks_sse2(chunk) }
}

#[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
#[target_feature(enable = "sse2")]
fn masks_sse2(chunk: &[u8; 64]) -> (u64, u64) {
    use std::arch::x86_64::{
        __m128i, _mm_cmpeq_epi8, _mm_loadu_si128, _mm_movemask_epi8, _mm_set1_epi8,
    };
    let newline = _mm_set1_epi8(b'\n' as i8);
    let colon = _mm_set1_epi8(b':' as i8);
    let (mut n, mut c) = (0u64, 0u64);
    for (k, part) in chunk.chunks_exact(16).enumerate() {
        // SAFETY: `part` is 16 readable bytes, exactly what the load reads;
        // `loadu` needs no alignment.
        let v = unsafe { _mm_loadu_si128(part.as_ptr().cast::<__m128i>()) };
        // movemask gives 16 bits in the low half of an i32.
        let bits = |m: i32| u64::from(m as u16) << (16 * k);
        n |= bits(_mm_movemask_epi8(_mm_cmpeq_epi8(v, newline)));
        c |= bits(_mm_movemask_epi8(_mm_cmpeq_epi8(v, colon)));
    }
    (n, c)
}

#[cfg(not(all(target_arch = "x86_64", target_feature = "sse2")))]
fn masks(chunk: &[u8; 64]) -> (u64, u64) {
    let (mut n, mut c) = (0u64, 0u64);
    for (i, &b) in chunk.iter().enumerate() {
        n |= u64::from(b == b'\n') << i;
        c |= u64::from(b == b':') << i;
    }
    (n, c)
}

/// The start line as the fast split reads it: `Method SP Request-URI
/// SP SIP/2.0` or `SIP/2.0 SP code SP reason`, exactly as almost every
/// sender writes them. `None` for anything else (another version spelling,
/// a URI that does not parse, ...), which [`parse_start_line`] then reads
/// with every check and names; this accepts nothing that it would reject.
fn fast_start_line(data: &[u8], s: usize, e: usize) -> Option<StartLine> {
    let line = data.get(s..e)?;
    if let Some(rest) = line.strip_prefix(b"SIP/2.0 ") {
        let (code, after) = rest.split_first_chunk::<3>()?;
        if !code.iter().all(u8::is_ascii_digit) || !(after.is_empty() || after[0] == b' ') {
            return None;
        }
        let code = code.iter().fold(0u16, |n, &d| n * 10 + u16::from(d - b'0'));
        if !(100..=699).contains(&code) {
            return None;
        }
        // The reason phrase may hold any UTF-8: the header section check
        // covers it, as it does on the slow path.
        let reason_start = s + 8 + 3 + usize::from(!after.is_empty());
        return Some(StartLine::Response(StatusLine {
            code,
            reason: Some(span(reason_start, e)),
        }));
    }
    let head = line.strip_suffix(b" SIP/2.0")?;
    let m = head.iter().position(|&c| !typed::is_token_char(c))?;
    if m == 0 || head[m] != b' ' {
        return None;
    }
    // One UTF-8 check for both parts (the method is ASCII: `m` is at a
    // space, a char boundary).
    let head = std::str::from_utf8(head).ok()?;
    let (method, uri) = (head.get(..m)?, head.get(m + 1..)?);
    // A URI that parses holds no space, so this line has exactly the two
    // spaces the slow path asks for.
    if UriRef::check(uri).ok()? {
        return None; // headers in the Request-URI
    }
    let uri_start = s + m + 1;
    Some(StartLine::Request(RequestLine {
        method: Method::from_token(method),
        uri: OnceLock::new(),
        raw_uri: Some(span(uri_start, uri_start + uri.len())),
    }))
}

fn with_partial(mut err: ParseError, msg: &Message, buf: &Bytes) -> ParseError {
    let mut partial = msg.clone();
    partial.buf = buf.clone();
    err.partial = Some(Box::new(partial));
    err
}

/// Replaces each folded line break (and the white space around it) with one
/// space (RFC 3261 §7.3.1).
fn unfold(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    let mut pending_space = false;
    for line in raw.split('\n') {
        // Trim every piece, the first kept one too: it may come from a
        // continuation line when the first line held only stray CRs.
        let trimmed = line
            .trim_end_matches(['\r', ' ', '\t'])
            .trim_start_matches([' ', '\t']);
        if trimmed.is_empty() {
            continue;
        }
        if pending_space {
            out.push(' ');
        }
        out.push_str(trimmed);
        pending_space = true;
    }
    out
}

fn parse_start_line(data: &[u8], s: usize, e: usize) -> Result<StartLine, ParseError> {
    let line =
        std::str::from_utf8(&data[s..e]).map_err(|_| ParseError::new("Malformed start line"))?;
    if line.len() >= 4 && line.as_bytes()[..4].eq_ignore_ascii_case(b"SIP/") {
        return parse_status_line(line, s);
    }
    // Method SP Request-URI SP SIP-Version, single spaces (RFC 3261 §25.1).
    let mut spaces = memchr::memchr_iter(b' ', line.as_bytes());
    let (Some(sp1), Some(sp2), None) = (spaces.next(), spaces.next(), spaces.next()) else {
        return Err(ParseError::new("Malformed request line"));
    };
    let (method, uri, version) = (&line[..sp1], &line[sp1 + 1..sp2], &line[sp2 + 1..]);
    if !typed::is_token(method) {
        return Err(ParseError::new("Malformed method"));
    }
    check_version(version)?;
    if uri.is_empty() {
        return Err(ParseError::new("Malformed request line"));
    }
    let parsed = UriRef::parse(uri)
        .map_err(|e| ParseError::owned(format!("Malformed Request-URI: {}", e.reason())))?;
    // RFC 3261 §19.1.1: headers are not allowed in a Request-URI; forwarding
    // them would let a caller inject headers downstream.
    if parsed.as_sip().is_some_and(|u| u.has_headers()) {
        return Err(ParseError::new("Request-URI must not contain headers"));
    }
    let uri_start = s + method.len() + 1;
    Ok(StartLine::Request(RequestLine {
        method: Method::from_token(method),
        // Built from `raw_uri` when first asked for (see `RequestLine`).
        uri: OnceLock::new(),
        raw_uri: Some(span(uri_start, uri_start + uri.len())),
    }))
}

/// A stand-in request line for a request whose line did not parse, so that
/// its headers can still be read to answer it. `None` when the line does not
/// even start with a method.
fn placeholder_request_line(line: &[u8]) -> Option<StartLine> {
    let line = std::str::from_utf8(line).ok()?;
    if line.len() >= 4 && line.as_bytes()[..4].eq_ignore_ascii_case(b"SIP/") {
        return None;
    }
    let method = line
        .split([' ', '\t'])
        .next()
        .filter(|m| typed::is_token(m))?;
    Some(StartLine::Request(RequestLine::new(
        Method::from_token(method),
        Uri::Other(crate::uri::AbsoluteUri {
            scheme: "invalid".into(),
            rest: String::new(),
        }),
    )))
}

fn check_version(version: &str) -> Result<(), ParseError> {
    if version.eq_ignore_ascii_case("SIP/2.0") {
        return Ok(());
    }
    let is_sip_version = version.len() > 4
        && version.as_bytes()[..4].eq_ignore_ascii_case(b"SIP/")
        && version[4..].split('.').count() == 2
        && version[4..]
            .split('.')
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
    if is_sip_version {
        Err(ParseError {
            status: 505,
            reason: Cow::Borrowed("Version Not Supported"),
            partial: None,
        })
    } else {
        Err(ParseError::new("Malformed SIP version"))
    }
}

fn parse_status_line(line: &str, s: usize) -> Result<StartLine, ParseError> {
    // SIP-Version SP Status-Code SP Reason-Phrase (possibly empty).
    let (version, rest) = line
        .split_once(' ')
        .ok_or_else(|| ParseError::new("Malformed status line"))?;
    check_version(version)?;
    let code_str = rest
        .get(..3)
        .ok_or_else(|| ParseError::new("Malformed status code"))?;
    let after = &rest[3..];
    if !code_str.bytes().all(|b| b.is_ascii_digit())
        || !(after.is_empty() || after.starts_with(' '))
    {
        return Err(ParseError::new("Malformed status code"));
    }
    let code: u16 = code_str
        .parse()
        .map_err(|_| ParseError::new("Malformed status code"))?;
    if !(100..=699).contains(&code) {
        return Err(ParseError::new("Status code out of range"));
    }
    let reason_start = s + version.len() + 1 + 3 + usize::from(!after.is_empty());
    Ok(StartLine::Response(StatusLine {
        code,
        reason: Some(span(reason_start, s + line.len())),
    }))
}

fn missing(name: HeaderName) -> String {
    format!("Missing {} header", name.canonical())
}

/// Whether a reason from [`validate`] concerns a header a response echoes
/// verbatim: a 400 to such a request is malformed in the same place.
pub fn is_echoed_header_fault(reason: &str) -> bool {
    [
        "Malformed From",
        "Malformed To",
        "Malformed Call-ID",
        "Malformed CSeq",
        "CSeq method",
    ]
    .iter()
    .any(|p| reason.starts_with(p))
}

/// The checks without which a message cannot be matched to a transaction,
/// answered, or routed.
/// What the checks found that later reads reuse (see [`Checked`]).
struct Found {
    top_via: Option<ViaSpans>,
    name_addr_params: Option<[(u32, u32); 2]>,
    cseq: Option<(u32, (u32, u32))>,
}

fn validate(msg: &Message, summary: &Summary) -> Result<Found, String> {
    let Summary {
        counts,
        first,
        top_via,
        contacts,
    } = *summary;
    // The first line of SINGLE[i], as `Message::header` would find it.
    let value =
        |i: usize| (counts[i] > 0).then(|| msg.text(&msg.headers[usize::from(first[i])].value));
    for (i, name) in SINGLE.iter().enumerate() {
        if counts[i] > 1 && *name != HeaderName::ContentLength {
            return Err(format!("Multiple {} headers", name.canonical()));
        }
    }
    let Some(top_via) = top_via else {
        return Err(missing(HeaderName::Via));
    };
    for i in [2, 3, 0, 1] {
        if counts[i] == 0 {
            return Err(missing(SINGLE[i]));
        }
    }

    // The checks below parse exactly as the typed accessors do, but through
    // the borrowed views, so validating copies nothing.
    // A line that checks whole as one value is one value: a second one
    // needs a comma outside quotes, which no part of a Via (or of a
    // Contact, below) may hold. Splitting the list is only for the rest.
    let via_line = msg.text(&msg.headers[usize::from(top_via)].value);
    let via_spans = Via::check_spans(via_line)
        .or_else(|_| Via::check(msg.values(HeaderName::Via).next().unwrap_or("")).map(|()| None))
        .map_err(|e| format!("Malformed Via header: {e}"))?;
    // A URI text checked once need not be parsed again: the Request-URI
    // (the start line parsed it) and From's URI, which To often repeats.
    let request_uri = match &msg.start {
        StartLine::Request(RequestLine {
            raw_uri: Some(t), ..
        }) => msg.text(t),
        _ => "",
    };
    let from = value(2)
        .map(|v| NameAddrRef::check(v, &[request_uri]))
        .ok_or_else(|| missing(HeaderName::From))?;
    let (from_uri, from_params) = from.map_err(|e| format!("Malformed From header: {e}"))?;
    let to = value(3)
        .map(|v| NameAddrRef::check(v, &[request_uri, from_uri]))
        .ok_or_else(|| missing(HeaderName::To))?;
    let (_, to_params) = to.map_err(|e| format!("Malformed To header: {e}"))?;

    let call_id = value(0).unwrap_or("");
    // White space or a control byte: SP, HTAB and the controls are exactly
    // the bytes up to 0x20, and DEL. A fold, not `any`, so it vectorizes.
    let bad = call_id
        .bytes()
        .fold(false, |bad, b| bad | (b <= b' ') | (b == 0x7f));
    if call_id.is_empty() || bad {
        return Err("Malformed Call-ID header".into());
    }
    let (cseq_seq, cseq_method) = value(1)
        .map(CSeq::split)
        .ok_or_else(|| missing(HeaderName::CSeq))?
        .map_err(|e| format!("Malformed CSeq header: {e}"))?;
    // `Method::from_token(t) == m` exactly when `t == m.as_str()`: a parsed
    // method comes from `from_token`, so it is never `Other` of a known one.
    if let Some(method) = msg.method()
        && cseq_method != method.as_str()
    {
        return Err("CSeq method does not match the request method".into());
    }
    if let Some(v) = value(4)
        && typed::parse_u32_max(v, 255).is_none()
    {
        return Err("Invalid Max-Forwards header".into());
    }
    if let Some(v) = value(7)
        && typed::parse_u32_max(v, u32::MAX).is_none()
    {
        return Err("Invalid Expires header".into());
    }
    if msg.is_request() && contacts > 0 {
        for line in msg.header_lines(HeaderName::Contact) {
            if ContactRef::check(line).is_ok() {
                continue;
            }
            for c in typed::split_list(line) {
                ContactRef::check(c).map_err(|e| format!("Malformed Contact header: {e}"))?;
            }
        }
    }
    // Where the From and To parameters and the CSeq method are in the
    // buffer; none when a value is not there (an unfolded copy).
    let params_span = |p: Option<&str>| match p {
        None => Some((0, 0)),
        Some(p) => msg.span_of(p),
    };
    let name_addr_params = params_span(from_params)
        .zip(params_span(to_params))
        .map(|(f, t)| [f, t]);
    let cseq = msg.span_of(cseq_method).map(|m| (cseq_seq, m));
    Ok(Found {
        top_via: via_spans,
        name_addr_params,
        cseq,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: &str = "INVITE sip:bob@biloxi.example.com SIP/2.0\r\n\
Via: SIP/2.0/UDP pc33.atlanta.example.com;branch=z9hG4bKnashds8\r\n\
Max-Forwards: 70\r\n\
To: Bob <sip:bob@biloxi.example.com>\r\n\
From: Alice <sip:alice@atlanta.example.com>;tag=1928301774\r\n\
Call-ID: a84b4c76e66710\r\n\
CSeq: 314159 INVITE\r\n\
Contact: <sip:alice@pc33.atlanta.example.com>\r\n\
Content-Type: application/sdp\r\n\
Content-Length: 4\r\n\r\nv=0\n";

    fn err(text: &str) -> ParseError {
        parse_datagram(text.as_bytes().to_vec()).expect_err("must fail")
    }

    #[test]
    fn parses_a_request() {
        let m = parse_datagram(BASE.as_bytes().to_vec()).expect("parse");
        assert_eq!(m.method(), Some(&Method::Invite));
        assert_eq!(
            m.request_uri_text().as_deref(),
            Some("sip:bob@biloxi.example.com")
        );
        assert_eq!(m.call_id(), Some("a84b4c76e66710"));
        assert_eq!(m.body().as_ref(), b"v=0\n");
        assert_eq!(m.header_count(), 9);
    }

    #[test]
    fn folding_and_compact_forms() {
        let text = BASE.replace("Max-Forwards: 70\r\n", "Subject: I know you're there,\r\n   pick up the phone\r\n\tand talk to me!\r\nMax-Forwards: 70\r\n")
            .replace("Call-ID:", "i:")
            .replace("To: Bob", "t:\r\n  Bob");
        let m = parse_datagram(text.into_bytes()).expect("parse");
        assert_eq!(
            m.header(HeaderName::Subject),
            Some("I know you're there, pick up the phone and talk to me!")
        );
        assert_eq!(m.call_id(), Some("a84b4c76e66710"));
        assert_eq!(m.to_header().expect("to").display.as_deref(), Some("Bob"));
    }

    #[test]
    fn unfolded_value_never_starts_with_white_space() {
        // Found by fuzzing: a first line of stray CRs was dropped but the
        // continuation's leading space kept, so `To:  <…>` re-parsed (and
        // re-serialized) differently.
        let text = BASE.replace("To: Bob", "To: \r\r\r\n  Bob");
        let m = parse_datagram(text.into_bytes()).expect("parse");
        assert_eq!(
            m.header(HeaderName::To),
            Some("Bob <sip:bob@biloxi.example.com>")
        );
        let first = m.to_bytes();
        let again = parse_datagram(first.clone()).expect("reparse");
        assert_eq!(again.to_bytes(), first);
    }

    #[test]
    fn content_length_rules() {
        // Longer than the body: 400 on UDP.
        let e = err(&BASE.replace("Content-Length: 4", "Content-Length: 9999"));
        assert_eq!(e.reason, "Content-Length larger than the body");
        let resp = e.response().expect("a 400 can be sent");
        assert_eq!(resp.status(), Some(400));
        assert!(resp.to_tag().is_some());
        // Shorter: the rest of the datagram is ignored.
        let m = parse_datagram(
            BASE.replace("Content-Length: 4", "Content-Length: 2")
                .into_bytes(),
        )
        .expect("parse");
        assert_eq!(m.body().as_ref(), b"v=");
        // Absent on UDP: the body is the rest of the datagram.
        let m =
            parse_datagram(BASE.replace("Content-Length: 4\r\n", "").into_bytes()).expect("parse");
        assert_eq!(m.body().as_ref(), b"v=0\n");
        // Absent on a stream: error.
        let e = parse_stream_frame(BASE.replace("Content-Length: 4\r\n", "").into_bytes())
            .expect_err("stream");
        assert_eq!(e.reason, "Missing Content-Length on a stream transport");
        assert_eq!(
            err(&BASE.replace("Content-Length: 4", "Content-Length: -4")).reason,
            "Invalid Content-Length"
        );
        assert_eq!(
            err(&BASE.replace("Content-Length: 4", "Content-Length: 4\r\nl: 5")).reason,
            "Conflicting Content-Length headers"
        );
    }

    #[test]
    fn version_and_start_line() {
        let e = err(&BASE.replace("biloxi.example.com SIP/2.0", "biloxi.example.com SIP/7.0"));
        assert_eq!(e.status, 505);
        assert_eq!(
            err(&BASE.replace("INVITE sip:", "INVITE  sip:")).reason,
            "Malformed request line"
        );
        assert_eq!(
            err(&BASE.replace(
                "INVITE sip:bob@biloxi.example.com",
                "INVITE <sip:bob@biloxi.example.com>"
            ))
            .status,
            400
        );
        let r = parse_datagram(
            b"SIP/2.0 200 \r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:c@d>\r\nCall-ID: x\r\nCSeq: 1 BYE\r\nContent-Length: 0\r\n\r\n".to_vec(),
        )
        .expect("empty reason");
        assert_eq!(r.status(), Some(200));
        assert_eq!(r.reason(), Some(""));
        assert_eq!(
            err("SIP/2.0 1000 Huge\r\n\r\n").reason,
            "Malformed status code"
        );
        assert_eq!(
            err("SIP/2.0 099 Low\r\n\r\n").reason,
            "Status code out of range"
        );
    }

    #[test]
    fn semantic_checks_name_the_problem() {
        assert_eq!(
            err(&BASE.replace("CSeq: 314159 INVITE", "CSeq: 314159 ACK")).reason,
            "CSeq method does not match the request method"
        );
        assert_eq!(
            err(&BASE.replace("Call-ID: a84b4c76e66710\r\n", "")).reason,
            "Missing Call-ID header"
        );
        assert_eq!(
            err(&BASE.replace("Max-Forwards: 70", "Max-Forwards: 300")).reason,
            "Invalid Max-Forwards header"
        );
        assert_eq!(
            err(&BASE.replace("Max-Forwards: 70", "To: <sip:other@x>")).reason,
            "Multiple To headers"
        );
        assert!(
            err(&BASE.replace("SIP/2.0/UDP pc33", "SIP/2.0/UDP"))
                .reason
                .starts_with("Malformed Via header")
        );
        assert_eq!(
            err("INVITE sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP h\r\n").reason,
            "Header section not terminated"
        );
        let e = err("INVITE sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\n\r\n");
        assert_eq!(e.reason, "Missing From header");
        assert!(e.response().is_none(), "no From/To/CSeq to echo");
    }

    #[test]
    fn accessors_of_parsed_messages_agree_with_full_parses() {
        // Parsed messages skip checks the parser made: same answers.
        let mut x: u64 = 0x5eed_1234_abcd_0001;
        let alphabet = b" ;=<>\",tagbranch@:z9hG4bK";
        let mut parsed = 0;
        for _ in 0..20_000 {
            let mut m = BASE
                .replace(";tag=1928301774", ";tag=1928301774;x=\"a;tag=b\"")
                .into_bytes();
            for _ in 0..1 + x % 3 {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                let at = 60 + (x as usize) % 200;
                m[at] = alphabet[(x >> 32) as usize % alphabet.len()];
            }
            let Ok(msg) = parse_datagram(m) else { continue };
            parsed += 1;
            assert!(msg.checked.fields);
            let full = |name| {
                NameAddrRef::parse(msg.header(name).unwrap_or(""))
                    .ok()
                    .and_then(|n| n.tag())
            };
            assert_eq!(msg.from_tag(), full(HeaderName::From));
            assert_eq!(msg.to_tag(), full(HeaderName::To));
            let cseq = || CSeq::parse(msg.header(HeaderName::CSeq).unwrap_or("")).ok();
            assert_eq!(msg.cseq(), cseq());
            // A response shares the request's buffer and what was found in it.
            let resp = Message::response_to(&msg, 200, None);
            assert_eq!(resp.from_tag(), full(HeaderName::From));
            assert_eq!(resp.to_tag(), full(HeaderName::To));
            assert_eq!(resp.cseq(), cseq());
            assert_eq!(
                msg.top_via(),
                Via::parse(msg.values(HeaderName::Via).next().unwrap_or(""))
            );
        }
        assert!(parsed > 1000, "{parsed}");
    }

    #[test]
    fn copying_the_whole_message_writes_what_the_parts_write() {
        let response = "SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:c@d>\r\nCall-ID: x\r\nCSeq: 1 BYE\r\nContent-Length: 2\r\n\r\nab";
        let lf = BASE.replace("\r\n", "\n");
        let mut x: u64 = 0x0dd_ba11_cafe_f00d;
        let alphabet = b" \t\r\n:;a0";
        let mut whole = 0;
        for _ in 0..20_000 {
            for base in [
                BASE,
                response,
                &lf,
                "SIP/2.0 200\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:c@d>\r\nCall-ID: x\r\nCSeq: 1 BYE\r\n\r\n",
            ] {
                let mut m = base.as_bytes().to_vec();
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                if !x.is_multiple_of(3) {
                    let at = (x >> 8) as usize % m.len();
                    m[at] = alphabet[(x >> 32) as usize % alphabet.len()];
                }
                let Ok(msg) = parse_datagram(m) else { continue };
                whole += usize::from(msg.checked.whole.is_some());
                let bytes = msg.to_bytes();
                assert_eq!(bytes.len(), msg.encoded_len());
                let mut parts = msg.clone();
                parts.checked.whole = None;
                assert_eq!(parts.to_bytes(), bytes);
                parts.checked.lines = None;
                assert_eq!(parts.to_bytes(), bytes);
            }
        }
        assert!(whole > 10_000, "{whole}");
        // A new Request-URI is written, not the old line.
        let mut m = parse_datagram(BASE.as_bytes().to_vec()).expect("parse");
        m.set_request_uri(Uri::parse("sip:carol@chicago.example.com").expect("uri"));
        assert!(
            m.to_bytes()
                .starts_with(b"INVITE sip:carol@chicago.example.com SIP/2.0\r\n")
        );
    }

    #[test]
    fn an_empty_first_via_line_yields_to_the_next() {
        let text = BASE.replace("Via: SIP/2.0/UDP pc33", "Via: ,\r\nVia: SIP/2.0/UDP pc33");
        let m = parse_datagram(text.into_bytes()).expect("parse");
        assert_eq!(m.top_via().expect("via").branch(), Some("z9hG4bKnashds8"));
    }

    #[test]
    fn uris_checked_once_still_fail_elsewhere() {
        // To repeating the Request-URI or From's URI is not parsed twice;
        // any other To URI is, in requests and responses alike.
        let ok = BASE.replace(
            "To: Bob <sip:bob@biloxi.example.com>",
            "To: <sip:alice@atlanta.example.com>",
        );
        parse_datagram(ok.into_bytes()).expect("To = From URI");
        for to in ["<>", "<sip:>", "<sip:bob@biloxi.example.com;=>", "sip:"] {
            let req = BASE.replace("Bob <sip:bob@biloxi.example.com>", to);
            assert!(err(&req).reason.starts_with("Malformed To"), "{to}");
            let resp = format!(
                "SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\nFrom: <sip:a@b>;tag=1\r\nTo: {to}\r\nCall-ID: x\r\nCSeq: 1 BYE\r\n\r\n"
            );
            assert!(err(&resp).reason.starts_with("Malformed To"), "{to}");
        }
    }

    #[test]
    fn a_400_is_malformed_only_where_it_echoes() {
        // Found by fuzzing: a 400 echoing an unparsable From does not parse.
        // It is sent all the same (RFC 4475 §3.1.2.6): the client matches it
        // by branch and CSeq, and its fault is the client's own.
        let e = err(&BASE.replace("From: Alice", "From: \"Alice"));
        assert!(e.reason.starts_with("Malformed From header"));
        let resp = e.response().expect("answered");
        let again = parse_datagram(resp.to_bytes()).expect_err("echoes the broken From");
        assert!(is_echoed_header_fault(&again.reason), "{}", again.reason);
        // An unreadable Via is echoed too; the 400 goes to the source.
        let e = err(&BASE.replace("SIP/2.0/UDP pc33", "SIP/2.0/UDP"));
        assert!(e.response().is_some());
        // A bad header the response does not echo still gets its 400.
        let e = err(&BASE.replace("Contact: <sip:alice@pc33", "Contact: <sip:alice@pc33 x"));
        assert!(
            e.reason.starts_with("Malformed Contact header"),
            "{}",
            e.reason
        );
        let resp = e.response().expect("a 400 can be sent");
        parse_datagram(resp.to_bytes()).expect("the 400 parses");
    }

    #[test]
    fn no_response_to_ack_or_responses() {
        let ack = BASE
            .replace("INVITE sip", "ACK sip")
            .replace("314159 INVITE", "314159 ACK")
            .replace("Content-Length: 4", "Content-Length: 40");
        assert!(err(&ack).response().is_none());
    }

    #[test]
    fn fast_split_agrees_with_the_checked_one() {
        let check = |m: &[u8]| {
            let Some(pos) = m.iter().position(|&b| b != b'\r' && b != b'\n') else {
                return;
            };
            if let Some((start, mut headers, body_start, (summary, lines))) = split_fast(m, pos) {
                assert_eq!(summary, Summary::of(&headers), "{m:?}");
                assert_eq!(lines, verbatim_lines(&headers), "{m:?}");
                let checked = split_checked(m, pos).expect("the checked split accepts it too");
                // Only the fast split marks lines for verbatim copying.
                for h in &mut headers {
                    h.line = NO_LINE;
                }
                assert_eq!(checked, (start, None, headers, body_start), "{m:?}");
            }
        };
        let lf = BASE.replace("\r\n", "\n");
        let odd = BASE.replace("Max-Forwards: 70", "Max-Forwards : 70\r\nX-Ü: ü");
        for base in [BASE, &lf, &odd] {
            check(base.as_bytes());
        }
        let mut x: u64 = 0x2545_F491_4F6C_DD1D;
        let alphabet = b" \t\r\n:;,<>\"aZ0\xc3\xbc";
        for _ in 0..20_000 {
            for base in [BASE, &lf, &odd] {
                let mut m = base.as_bytes().to_vec();
                for _ in 0..1 + x % 3 {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    let at = (x as usize) % m.len();
                    m[at] = alphabet[(x >> 32) as usize % alphabet.len()];
                }
                check(&m);
            }
        }
    }

    #[test]
    fn masks_mark_every_newline_and_colon() {
        let mut x: u64 = 0x1234_5678_9abc_def1;
        for _ in 0..2000 {
            let mut chunk = [0u8; 64];
            for b in &mut chunk {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                *b = [b'\n', b':', b'a', 0x8a, 0xba, b'\r', 0][(x % 7) as usize];
            }
            let (n, c) = masks(&chunk);
            for (i, &b) in chunk.iter().enumerate() {
                assert_eq!(n >> i & 1 == 1, b == b'\n');
                assert_eq!(c >> i & 1 == 1, b == b':');
            }
        }
    }

    #[test]
    fn garbage_never_panics() {
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        let alphabet =
            b"INVITE sip:@;=<>\"\\\r\n\t :,/SIP2.0ViaCSeqContent-Lengthl:v:0123456789[]%";
        for round in 0..20_000 {
            let len = (round % 300) as usize;
            let mut buf = Vec::with_capacity(len);
            for _ in 0..len {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                buf.push(alphabet[(x % alphabet.len() as u64) as usize]);
            }
            if let Err(e) = parse_datagram(buf.clone()) {
                let _ = e.response();
            }
            // Mutations of a valid message reach deeper into the parser.
            let mut m = BASE.as_bytes().to_vec();
            let at = (x as usize) % m.len();
            m[at] = alphabet[(x >> 20) as usize % alphabet.len()];
            if let Err(e) = parse_datagram(m) {
                let _ = e.response();
            }
        }
    }
}
