//! A stateless error response built from the raw header section of a request
//! the framer refused, so the peer learns why (e.g. 513) before we close.
//!
//! Byte-level on purpose: the message could not be framed, so it is not
//! handed to the parser. Only the headers RFC 3261 §8.2.6.2 requires a
//! response to copy are used.

const COPIED: &[&str] = &["via", "v", "from", "f", "to", "t", "call-id", "i", "cseq"];

/// `None` when `head` is a response or an ACK (neither is answered), or lacks
/// a header a response needs.
pub(crate) fn response(head: &[u8], code: u16, reason: &str, tag: u64) -> Option<Vec<u8>> {
    let mut lines = head
        .split(|&b| b == b'\n')
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l));
    let start = lines.next()?;
    if start.starts_with(b"SIP/") || start.starts_with(b"ACK ") {
        return None;
    }
    let mut out = format!("SIP/2.0 {code} {reason}\r\n").into_bytes();
    let mut seen = [false; 5]; // via, from, to, call-id, cseq
    let mut copying = false;
    let mut needs_tag = false;
    for line in lines {
        if line.is_empty() {
            break;
        }
        if line.starts_with(b" ") || line.starts_with(b"\t") {
            if copying {
                out.extend_from_slice(b"\r\n");
                out.extend_from_slice(line);
            }
            continue;
        }
        finish_field(&mut out, &mut copying, &mut needs_tag, tag);
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            continue;
        };
        let name = line[..colon].trim_ascii();
        let Some(i) = COPIED
            .iter()
            .position(|c| name.eq_ignore_ascii_case(c.as_bytes()))
        else {
            continue;
        };
        let kind = [0, 0, 1, 1, 2, 2, 3, 3, 4][i];
        seen[kind] = true;
        copying = true;
        needs_tag = kind == 2 && !has_tag(&line[colon + 1..]);
        out.extend_from_slice(line);
    }
    finish_field(&mut out, &mut copying, &mut needs_tag, tag);
    if !seen.iter().all(|&s| s) {
        return None;
    }
    out.extend_from_slice(b"Content-Length: 0\r\n\r\n");
    Some(out)
}

fn finish_field(out: &mut Vec<u8>, copying: &mut bool, needs_tag: &mut bool, tag: u64) {
    if *copying {
        if *needs_tag {
            out.extend_from_slice(format!(";tag={tag:x}").as_bytes());
        }
        out.extend_from_slice(b"\r\n");
    }
    *copying = false;
    *needs_tag = false;
}

/// Whether a To value carries a `tag` parameter. Rough (a `;` inside a quoted
/// display name could fool it), which only costs a second tag.
fn has_tag(value: &[u8]) -> bool {
    value.split(|&b| b == b';').skip(1).any(|param| {
        let param = param.trim_ascii_start();
        param.len() >= 3
            && param[..3].eq_ignore_ascii_case(b"tag")
            && param[3..].trim_ascii_start().starts_with(b"=")
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn answers_a_request() {
        let head = b"INVITE sip:b@x SIP/2.0\r\nVia: SIP/2.0/TCP h;branch=z9hG4bK1\r\n\
Max-Forwards: 70\r\nf: <sip:a@x>;tag=1\r\nTo: <sip:b@x>\r\ni: abc\r\nCSeq: 1\r\n INVITE\r\nl: 99999\r\n\r\n";
        let resp =
            String::from_utf8(response(head, 513, "Message Too Large", 0xbeef).unwrap()).unwrap();
        assert_eq!(
            resp,
            "SIP/2.0 513 Message Too Large\r\nVia: SIP/2.0/TCP h;branch=z9hG4bK1\r\n\
f: <sip:a@x>;tag=1\r\nTo: <sip:b@x>;tag=beef\r\ni: abc\r\nCSeq: 1\r\n INVITE\r\nContent-Length: 0\r\n\r\n"
        );
    }

    #[test]
    fn keeps_an_existing_to_tag() {
        let head = b"BYE sip:b@x SIP/2.0\r\nv: x\r\nf: a\r\nt: <sip:b@x>;TAG=9\r\ni: c\r\nCSeq: 2 BYE\r\n\r\n";
        let resp = response(head, 400, "Bad", 1).unwrap();
        let resp = String::from_utf8(resp).unwrap();
        assert!(resp.contains("t: <sip:b@x>;TAG=9\r\n"), "{resp}");
    }

    #[test]
    fn leaves_responses_acks_and_incomplete_requests_alone() {
        assert_eq!(
            response(b"SIP/2.0 200 OK\r\nl: 1\r\n\r\n", 400, "Bad", 1),
            None
        );
        assert_eq!(
            response(
                b"ACK sip:x SIP/2.0\r\nv: x\r\nf: a\r\nt: b\r\ni: c\r\nCSeq: 1 ACK\r\n\r\n",
                400,
                "Bad",
                1
            ),
            None
        );
        assert_eq!(
            response(b"INVITE sip:x SIP/2.0\r\nv: x\r\n\r\n", 400, "Bad", 1),
            None
        );
    }
}
