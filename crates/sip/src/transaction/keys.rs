//! Matching keys (RFC 3261 §17.1.3 and §17.2.3) and where server responses go.
//!
//! A key is the matching fields written into one byte string. The layer
//! builds keys in a reused scratch buffer and copies a new transaction's key
//! into its slot's reused buffer, so neither matching nor creating a
//! transaction allocates for keys.

use std::hash::{BuildHasher, Hash, Hasher};
use std::io::Write;
use std::net::SocketAddr;

use crate::message::Message;
use crate::method::Method;
use crate::typed::Via;
use crate::uri::Host;

use super::Peer;

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
pub(crate) fn client_key(out: &mut Vec<u8>, branch: &str, method: &Method) {
    out.clear();
    out.extend_from_slice(method.as_str().as_bytes());
    out.push(1);
    out.extend_from_slice(branch.as_bytes());
}

/// RFC 3261 server key: branch, sent-by and method, with `method` standing in
/// for the request's own (INVITE, to match a CANCEL to what it cancels).
pub(crate) fn server_key(out: &mut Vec<u8>, via: &Via<'_>, branch: &str, method: &Method) {
    out.clear();
    out.extend_from_slice(class(method).as_bytes());
    out.push(1);
    out.extend_from_slice(branch.as_bytes());
    out.push(1);
    // The host in binary, not as text: formatting an address costs more than
    // the rest of the key. The tag byte keeps the three forms apart (a name
    // has no ':', so the port after it is unambiguous too).
    match &via.host {
        Host::Domain(d) => {
            out.push(b'D');
            let at = out.len();
            out.extend_from_slice(d.as_bytes());
            // Host names compare case-insensitively; the rest of the key exactly.
            out[at..].make_ascii_lowercase();
        }
        Host::V4(a) => {
            out.push(b'4');
            out.extend_from_slice(&a.octets());
        }
        Host::V6(a) => {
            out.push(b'6');
            out.extend_from_slice(&a.octets());
        }
    }
    if let Some(port) = via.port {
        out.push(b':');
        out.extend_from_slice(&port.to_be_bytes());
    }
}

/// RFC 2543 server key, for requests whose branch lacks the magic cookie:
/// Request-URI, To tag, From tag, Call-ID, CSeq number and top Via. `to_tag`
/// is passed separately because an ACK is looked up with the tag of the
/// INVITE, not its own (which is the tag of the response). `false` when the
/// request lacks one of these fields.
pub(crate) fn rfc2543_key(
    out: &mut Vec<u8>,
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
    out.push(2);
    out.extend_from_slice(class(method).as_bytes());
    for part in [
        &*uri,
        to_tag.unwrap_or(""),
        req.from_tag().unwrap_or(""),
        call_id.trim(),
    ] {
        out.push(1);
        out.extend_from_slice(part.as_bytes());
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
        let (mut ka, mut kb) = (Vec::new(), Vec::new());
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
