//! Messages the transaction layer writes itself: the ACK for a non-2xx final
//! response (§17.1.1.3), CANCEL (§9.1), the Via branch of a TU's request,
//! and stateless answers.

use crate::header::HeaderName;
use crate::ids::random_u64;
use crate::message::Message;
use crate::method::Method;

use super::{TransportKind, TxError};

/// Gives the request a top Via with a branch: adds a whole Via when there is
/// none, or a fresh branch to a top Via written without one. `branch` gets
/// the top branch, so the caller need not parse the Via again.
pub(crate) fn ensure_branch(
    msg: &mut Message,
    transport: TransportKind,
    sent_by: &str,
    branch: impl FnOnce(&str),
) -> Result<(), TxError> {
    if msg.header(HeaderName::Via).is_none() {
        // Written piece by piece: this runs for every request a UA sends,
        // and the formatting machinery costs more than the rest of it.
        let token = transport.via_token();
        let mut via = String::with_capacity(
            "SIP/2.0/ ;branch=;rport".len() + token.len() + sent_by.len() + BRANCH_LEN,
        );
        via.push_str("SIP/2.0/");
        via.push_str(token);
        via.push(' ');
        via.push_str(sent_by);
        via.push_str(";branch=");
        let at = via.len();
        push_new_branch(&mut via);
        branch(&via[at..]);
        via.push_str(";rport");
        msg.prepend_header(HeaderName::Via, via);
        return Ok(());
    }
    let via = msg.top_via().map_err(|_| TxError::Malformed)?;
    if let Some(b) = via.branch() {
        branch(b);
        return Ok(());
    }
    let top = msg
        .values(HeaderName::Via)
        .next()
        .ok_or(TxError::Malformed)?;
    let mut with_branch = String::with_capacity(top.len() + ";branch=".len() + BRANCH_LEN);
    with_branch.push_str(top);
    with_branch.push_str(";branch=");
    let at = with_branch.len();
    push_new_branch(&mut with_branch);
    branch(&with_branch[at..]);
    msg.remove_first_value(HeaderName::Via);
    msg.prepend_header(HeaderName::Via, with_branch);
    Ok(())
}

/// The length of a branch from [`push_new_branch`].
const BRANCH_LEN: usize = MAGIC_COOKIE.len() + 16;
const MAGIC_COOKIE: &str = "z9hG4bK";

/// Appends a fresh branch: the magic cookie and 64 random bits in hex, the
/// form of [`crate::ids::new_branch`] without its allocation and formatting.
fn push_new_branch(out: &mut String) {
    out.push_str(MAGIC_COOKIE);
    let bits = random_u64();
    // Formatted aside and appended at once: a `push` per digit checked the
    // capacity and encoded a char each time.
    let mut hex = [0u8; 16];
    for (i, h) in hex.iter_mut().enumerate() {
        *h = b"0123456789abcdef"[(bits >> ((15 - i) * 4)) as usize & 0xf];
    }
    out.push_str(std::str::from_utf8(&hex).unwrap_or_default());
}

/// The headers ACK and CANCEL copy from the request they refer to: one Via
/// (the top one, so they share its branch), the Route set, From, Call-ID.
/// `to` is the To header to use, and `method` the new request's.
fn derived_request(req: &Message, method: Method, to: &str) -> Option<Message> {
    let mut out = Message::request(method.clone(), req.request_uri()?.clone());
    out.push_header(HeaderName::Via, req.values(HeaderName::Via).next()?);
    for route in req.header_lines(HeaderName::Route) {
        out.push_header(HeaderName::Route, route);
    }
    out.push_header(HeaderName::MaxForwards, "70");
    out.push_header(HeaderName::From, req.header(HeaderName::From)?);
    out.push_header(HeaderName::To, to);
    out.push_header(HeaderName::CallId, req.call_id()?);
    let seq = req.cseq()?.seq;
    out.push_header(HeaderName::CSeq, format!("{seq} {method}"));
    out.push_header(HeaderName::ContentLength, "0");
    Some(out)
}

/// The ACK an INVITE client transaction sends for a 300–699 response: the
/// To header (with its tag) comes from the response (§17.1.1.3).
pub(crate) fn ack_for_non_2xx(invite: &Message, resp: &Message) -> Option<Message> {
    derived_request(invite, Method::Ack, resp.header(HeaderName::To)?)
}

/// The CANCEL for an INVITE: everything that identifies the INVITE,
/// To included, unchanged (§9.1).
pub(crate) fn cancel_for(invite: &Message) -> Option<Message> {
    derived_request(invite, Method::Cancel, invite.header(HeaderName::To)?)
}

/// A response the layer sends on its own; `to_tag` is added when given.
pub(crate) fn layer_response(req: &Message, code: u16, to_tag: Option<&str>) -> Message {
    let mut resp = Message::response_to(req, code, None);
    if let Some(tag) = to_tag {
        resp.set_to_tag(tag);
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse::parse_datagram;

    const INVITE: &str = "INVITE sip:bob@b.example SIP/2.0\r\n\
Via: SIP/2.0/UDP a.example:5060;branch=z9hG4bKabc\r\n\
Via: SIP/2.0/UDP proxy.example;branch=z9hG4bKdown\r\n\
Route: <sip:p1.example;lr>\r\n\
Route: <sip:p2.example;lr>\r\n\
Max-Forwards: 69\r\n\
To: Bob <sip:bob@b.example>\r\n\
From: Alice <sip:alice@a.example>;tag=a1\r\n\
Call-ID: c1@a.example\r\n\
CSeq: 7 INVITE\r\n\
Content-Type: application/sdp\r\n\
Content-Length: 4\r\n\r\nv=0\n";

    #[test]
    fn ack_copies_the_invite_and_takes_to_from_the_response() {
        let invite = parse_datagram(INVITE.as_bytes().to_vec()).expect("invite");
        let mut resp = Message::response_to(&invite, 486, None);
        resp.set_to_tag("b9");
        let ack = ack_for_non_2xx(&invite, &resp).expect("ack");
        let ack = parse_datagram(ack.to_bytes()).expect("reparse");
        assert_eq!(ack.method(), Some(&Method::Ack));
        assert_eq!(ack.request_uri_text().as_deref(), Some("sip:bob@b.example"));
        let vias: Vec<_> = ack.values(HeaderName::Via).collect();
        assert_eq!(vias, ["SIP/2.0/UDP a.example:5060;branch=z9hG4bKabc"]);
        let routes: Vec<_> = ack.header_lines(HeaderName::Route).collect();
        assert_eq!(routes, ["<sip:p1.example;lr>", "<sip:p2.example;lr>"]);
        assert_eq!(ack.to_tag(), Some("b9"));
        assert_eq!(ack.from_tag(), Some("a1"));
        assert_eq!(ack.call_id(), Some("c1@a.example"));
        let cseq = ack.cseq().expect("cseq");
        assert_eq!((cseq.seq, cseq.method), (7, Method::Ack));
        assert!(ack.body().is_empty());
    }

    #[test]
    fn cancel_keeps_the_invite_to() {
        let invite = parse_datagram(INVITE.as_bytes().to_vec()).expect("invite");
        let cancel = cancel_for(&invite).expect("cancel");
        assert_eq!(cancel.to_tag(), None);
        assert_eq!(cancel.cseq().map(|c| c.method), Some(Method::Cancel));
        assert_eq!(cancel.top_via().expect("via").branch(), Some("z9hG4bKabc"));
    }

    #[test]
    fn fresh_branches_look_like_new_branch() {
        let mut a = String::new();
        push_new_branch(&mut a);
        let b = crate::ids::new_branch();
        assert_eq!(a.len(), BRANCH_LEN);
        assert_eq!(b.len(), BRANCH_LEN);
        assert!(a.starts_with(MAGIC_COOKIE));
        assert!(
            a[MAGIC_COOKIE.len()..]
                .bytes()
                .all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f'))
        );
        let mut c = String::new();
        push_new_branch(&mut c);
        assert_ne!(a, c);
    }

    #[test]
    fn branch_added_only_when_missing() {
        let uri = crate::uri::Uri::parse("sip:x.example").expect("uri");
        let mut m = Message::request(Method::Options, uri.clone());
        let mut seen = String::new();
        ensure_branch(&mut m, TransportKind::Tcp, "me.example:5060", |b| {
            seen = b.to_owned()
        })
        .expect("via");
        let via = m.top_via().expect("via");
        assert_eq!(via.transport, "TCP");
        assert!(via.has_rfc3261_branch());
        assert_eq!(via.branch(), Some(seen.as_str()));
        assert_eq!(
            m.values(HeaderName::Via).next(),
            Some(format!("SIP/2.0/TCP me.example:5060;branch={seen};rport").as_str())
        );

        let mut m = Message::request(Method::Options, uri);
        m.push_header(
            HeaderName::Via,
            "SIP/2.0/UDP me.example, SIP/2.0/UDP p.example",
        );
        ensure_branch(&mut m, TransportKind::Udp, "unused", |b| {
            seen = b.to_owned()
        })
        .expect("via");
        let vias: Vec<String> = m.values(HeaderName::Via).map(str::to_owned).collect();
        assert_eq!(vias.len(), 2);
        assert!(vias[0].starts_with("SIP/2.0/UDP me.example;branch=z9hG4bK"));
        assert_eq!(vias[1], "SIP/2.0/UDP p.example");
        let branch = m.top_via().expect("via").branch().map(str::to_owned);
        assert_eq!(branch.as_deref(), Some(seen.as_str()));
        ensure_branch(&mut m, TransportKind::Udp, "unused", |b| {
            seen = b.to_owned()
        })
        .expect("via");
        assert_eq!(branch.as_deref(), Some(seen.as_str()));
        assert_eq!(
            m.top_via().expect("via").branch().map(str::to_owned),
            branch
        );
    }
}
