//! Matching keys (RFC 3261 §17.1.3 and §17.2.3) and where server responses go.
//!
//! A key is the matching fields written into one string. The layer builds
//! lookup keys in a reused scratch buffer, so matching allocates nothing;
//! only a new transaction's key is copied into an owned [`TxKey`].

use std::borrow::Borrow;
use std::fmt::Write;
use std::hash::{BuildHasher, Hash, Hasher};
use std::net::SocketAddr;

use crate::message::Message;
use crate::method::Method;
use crate::typed::Via;

use super::Peer;

/// An owned matching key: borrows nothing from any message.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct TxKey(Box<str>);

impl TxKey {
    pub(crate) fn new(s: &str) -> TxKey {
        TxKey(s.into())
    }
}

impl Borrow<str> for TxKey {
    fn borrow(&self) -> &str {
        &self.0
    }
}

/// The method a server transaction is matched under: an ACK belongs to the
/// INVITE transaction (§17.2.3).
fn class(method: &Method) -> &str {
    match method {
        Method::Ack => Method::Invite.as_str(),
        m => m.as_str(),
    }
}

/// Client transaction key from a branch and a method (the request's, or a
/// response's CSeq method).
pub(crate) fn client_key(out: &mut String, branch: &str, method: &Method) {
    out.clear();
    out.push_str(method.as_str());
    out.push('\x01');
    out.push_str(branch);
}

/// RFC 3261 server key: branch, sent-by and method, with `method` standing in
/// for the request's own (INVITE, to match a CANCEL to what it cancels).
pub(crate) fn server_key(out: &mut String, via: &Via<'_>, branch: &str, method: &Method) {
    out.clear();
    out.push_str(class(method));
    out.push('\x01');
    out.push_str(branch);
    out.push('\x01');
    let host_at = out.len();
    // Host names compare case-insensitively; the rest of the key exactly.
    let _ = write!(out, "{}", via.host);
    out[host_at..].make_ascii_lowercase();
    if let Some(port) = via.port {
        let _ = write!(out, ":{port}");
    }
}

/// RFC 2543 server key, for requests whose branch lacks the magic cookie:
/// Request-URI, To tag, From tag, Call-ID, CSeq number and top Via. `to_tag`
/// is passed separately because an ACK is looked up with the tag of the
/// INVITE, not its own (which is the tag of the response). `false` when the
/// request lacks one of these fields.
pub(crate) fn rfc2543_key(
    out: &mut String,
    req: &Message,
    method: &Method,
    to_tag: Option<&str>,
) -> bool {
    let (Some(uri), Some(call_id), Some(cseq), Some(via)) = (
        req.request_uri_text(),
        req.call_id(),
        req.cseq(),
        req.values(crate::header::HeaderName::Via).next(),
    ) else {
        return false;
    };
    out.clear();
    out.push('\x02');
    out.push_str(class(method));
    for part in [
        &*uri,
        to_tag.unwrap_or(""),
        req.from_tag().unwrap_or(""),
        call_id.trim(),
    ] {
        out.push('\x01');
        out.push_str(part);
    }
    let _ = write!(out, "\x01{}\x01{}", cseq.seq, via.trim());
    true
}

/// A fingerprint of From tag, Call-ID and CSeq for merged-request detection
/// (§8.2.2.2). 64 bits of a keyed hash: a false match needs a collision
/// between two live transactions, which is negligible next to packet loss.
pub(crate) fn merge_fingerprint(hasher: &impl BuildHasher, req: &Message) -> Option<u64> {
    let from_tag = req.from_tag()?;
    let call_id = req.call_id()?;
    let cseq = req.cseq()?;
    let mut h = hasher.build_hasher();
    from_tag.hash(&mut h);
    call_id.trim().hash(&mut h);
    cseq.seq.hash(&mut h);
    cseq.method.as_str().hash(&mut h);
    Some(h.finish())
}

/// Where a server transaction sends its responses (§18.2.2, RFC 3581): back on
/// the same connection for reliable transports; over UDP to the source
/// address, at the source port when the client asked for `rport`, else at the
/// sent-by port. (`maddr` and multicast are not supported.)
pub(crate) fn response_peer(via: &Via<'_>, from: Peer) -> Peer {
    if from.transport.is_reliable() {
        return from;
    }
    let port = match via.rport() {
        Some(_) => from.addr.port(),
        None => via.port.unwrap_or(5060),
    };
    Peer {
        addr: SocketAddr::new(from.addr.ip(), port),
        ..from
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transaction::TransportKind;

    #[test]
    fn server_key_folds_ack_into_invite_and_host_case() {
        let a = Via::parse("SIP/2.0/UDP Host.Example:5070;branch=z9hG4bKx").expect("via");
        let b = Via::parse("SIP/2.0/UDP host.example:5070;branch=z9hG4bKx").expect("via");
        let (mut ka, mut kb) = (String::new(), String::new());
        server_key(&mut ka, &a, "z9hG4bKx", &Method::Invite);
        server_key(&mut kb, &b, "z9hG4bKx", &Method::Ack);
        assert_eq!(ka, kb);
        server_key(&mut kb, &b, "z9hG4bKx", &Method::Cancel);
        assert_ne!(ka, kb);
        // A different port is a different sender.
        let c = Via::parse("SIP/2.0/UDP host.example:5071;branch=z9hG4bKx").expect("via");
        server_key(&mut kb, &c, "z9hG4bKx", &Method::Invite);
        assert_ne!(ka, kb);
    }

    #[test]
    fn responses_follow_rport_or_sent_by() {
        let from = Peer::new(TransportKind::Udp, "192.0.2.9:40000".parse().expect("addr"));
        let via =
            Via::parse("SIP/2.0/UDP 10.0.0.1:5080;rport=40000;received=192.0.2.9").expect("via");
        assert_eq!(response_peer(&via, from).addr, from.addr);
        let via = Via::parse("SIP/2.0/UDP 10.0.0.1:5080").expect("via");
        assert_eq!(
            response_peer(&via, from).addr,
            "192.0.2.9:5080".parse().expect("addr")
        );
        let tcp = Peer::new(TransportKind::Tcp, from.addr);
        assert_eq!(response_peer(&via, tcp), tcp);
    }
}
