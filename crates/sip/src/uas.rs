//! What a UAS checks before it acts on a request (RFC 3261 §8.2), and what a
//! UAC checks before it trusts a response (§8.1.3.3). Each refusal comes
//! back as the response to send, with the header the peer needs to do
//! better next time (Allow, Unsupported, Accept).

use crate::header::HeaderName;
use crate::message::Message;
use crate::method::Method;
use crate::typed;

/// What this UAS supports.
#[derive(Debug, Clone)]
pub struct UasPolicy {
    /// Methods it accepts; a recognised method not listed gets 405.
    pub methods: Vec<Method>,
    /// Request-URI schemes it can serve (lower case); others get 416.
    pub schemes: Vec<&'static str>,
    /// Option tags it supports (Require checks, §8.2.2.3).
    pub extensions: Vec<&'static str>,
    /// Body types it understands (§8.2.3).
    pub content_types: Vec<&'static str>,
    /// Content-Encodings it understands; "identity" is always understood.
    pub encodings: Vec<&'static str>,
    /// Whether it acts as a registrar, which checks REGISTER's address of
    /// record (§10.3).
    pub registrar: bool,
}

impl Default for UasPolicy {
    fn default() -> Self {
        UasPolicy {
            methods: vec![
                Method::Invite,
                Method::Ack,
                Method::Bye,
                Method::Cancel,
                Method::Options,
                Method::Register,
                Method::Info,
                Method::Update,
                Method::Prack,
                Method::Refer,
                Method::Notify,
                Method::Message,
            ],
            schemes: vec!["sip", "sips", "tel"],
            extensions: vec!["replaces", "timer", "100rel", "outbound", "path"],
            content_types: vec!["application/sdp", "application/dtmf-relay", "text/plain"],
            encodings: vec![],
            registrar: true,
        }
    }
}

impl UasPolicy {
    /// The Allow header value.
    pub fn allow(&self) -> String {
        let names: Vec<&str> = self.methods.iter().map(Method::as_str).collect();
        names.join(", ")
    }
}

fn refuse(req: &Message, code: u16, reason: Option<&str>) -> Box<Message> {
    let mut resp = Message::response_to(req, code, reason);
    resp.set_to_tag(&crate::ids::new_tag());
    Box::new(resp)
}

/// Checks a request in the order of RFC 3261 §8.2. `Err` holds the response
/// to send (for an ACK there is never one: `Err(None)`-like cases are
/// reported as `Ok`, since an ACK cannot be refused).
pub fn check_request(req: &Message, policy: &UasPolicy) -> Result<(), Box<Message>> {
    let Some(method) = req.method() else {
        return Ok(());
    };
    if *method == Method::Ack {
        return Ok(());
    }

    // §8.2.1 method inspection: an unknown method is 501, a known one this
    // UAS does not do is 405; both carry Allow.
    if !policy.methods.contains(method) {
        let code = if matches!(method, Method::Other(_)) {
            501
        } else {
            405
        };
        let mut resp = refuse(req, code, None);
        resp.push_header(HeaderName::Allow, policy.allow());
        return Err(resp);
    }

    // §8.2.2.1: a Request-URI scheme it cannot serve.
    if let Some(uri) = req.request_uri()
        && !policy.schemes.contains(&uri.scheme())
    {
        return Err(refuse(req, 416, None));
    }

    // §10.3 step 5: a registrar serves SIP and SIPS addresses of record only.
    if *method == Method::Register && policy.registrar {
        let aor_ok = req
            .to_header()
            .is_ok_and(|to| matches!(to.uri.scheme(), "sip" | "sips"));
        if !aor_ok {
            return Err(refuse(
                req,
                400,
                Some("Address of record must be a SIP or SIPS URI"),
            ));
        }
    }

    // §8.2.2.3: option tags the UAS does not support. Not for CANCEL, and an
    // ACK was let through above (RFC 3261 forbids refusing them).
    if *method != Method::Cancel {
        let unsupported: Vec<&str> = req
            .values(HeaderName::Require)
            .filter(|tag| {
                !policy
                    .extensions
                    .iter()
                    .any(|e| e.eq_ignore_ascii_case(tag))
            })
            .collect();
        if !unsupported.is_empty() {
            let mut resp = refuse(req, 420, None);
            resp.push_header(HeaderName::Unsupported, unsupported.join(", "));
            return Err(resp);
        }
    }

    // §8.2.3: a body it cannot read.
    if !req.body().is_empty() {
        let understood = req.content_type().is_none_or(|ct| {
            let media = ct.split(';').next().unwrap_or("").trim();
            media.eq_ignore_ascii_case("multipart/mixed")
                || media.eq_ignore_ascii_case("multipart/alternative")
                || policy
                    .content_types
                    .iter()
                    .any(|t| t.eq_ignore_ascii_case(media))
        });
        if !understood {
            let mut resp = refuse(req, 415, None);
            resp.push_header(HeaderName::Accept, policy.content_types.join(", "));
            return Err(resp);
        }
        let bad_encoding = req.values(HeaderName::ContentEncoding).any(|enc| {
            !enc.eq_ignore_ascii_case("identity")
                && !policy.encodings.iter().any(|e| e.eq_ignore_ascii_case(enc))
        });
        if bad_encoding {
            let mut resp = refuse(req, 415, Some("Unsupported Content-Encoding"));
            resp.push_header_raw("Accept-Encoding", "identity");
            return Err(resp);
        }
    }

    // §8.2.2.2 of a kind: a caller that will not accept SDP cannot be
    // answered with a session description (RFC 4475 §3.3.15).
    if *method == Method::Invite
        && let Some(accept) = req.header(HeaderName::Accept)
    {
        let takes_sdp = typed::split_list(accept).any(|t| {
            let media = t.split(';').next().unwrap_or("").trim();
            media.eq_ignore_ascii_case("application/sdp")
                || media == "*/*"
                || media.eq_ignore_ascii_case("application/*")
        });
        if !takes_sdp {
            let mut resp = refuse(req, 406, None);
            resp.push_header(HeaderName::Accept, "application/sdp");
            resp.push_header_raw("Warning", "399 tandem \"Only application/sdp is offered\"");
            return Err(resp);
        }
    }
    Ok(())
}

/// §8.1.3.3: a response carrying more than one Via was not meant for this
/// UAC (a misrouted or forged response) and is discarded.
pub fn response_is_for_us(resp: &Message) -> bool {
    resp.values(HeaderName::Via).nth(1).is_none()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse_datagram;

    fn req(method: &str, uri: &str, extra: &str, body: &str) -> Message {
        let text = format!(
            "{method} {uri} SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\nFrom: <sip:a@b>;tag=1\r\n\
To: <sip:c@d>\r\nCall-ID: x\r\nCSeq: 1 {method}\r\n{extra}Content-Length: {}\r\n\r\n{body}",
            body.len()
        );
        parse_datagram(text.into_bytes()).expect("parse")
    }

    fn status(r: Result<(), Box<Message>>) -> Option<u16> {
        r.err().and_then(|m| m.status())
    }

    #[test]
    fn method_checks() {
        let p = UasPolicy::default();
        let r = check_request(&req("FOO", "sip:c@d", "", ""), &p).expect_err("501");
        assert_eq!(r.status(), Some(501));
        assert!(
            r.header(HeaderName::Allow)
                .is_some_and(|a| a.contains("INVITE"))
        );
        assert!(r.to_tag().is_some());
        let p2 = UasPolicy {
            methods: vec![Method::Invite],
            ..UasPolicy::default()
        };
        assert_eq!(
            status(check_request(&req("SUBSCRIBE", "sip:c@d", "", ""), &p2)),
            Some(405)
        );
        assert_eq!(
            status(check_request(&req("OPTIONS", "sip:c@d", "", ""), &p)),
            None
        );
    }

    #[test]
    fn scheme_require_and_body_checks() {
        let p = UasPolicy::default();
        assert_eq!(
            status(check_request(&req("OPTIONS", "im:c@d", "", ""), &p)),
            Some(416)
        );
        let r = check_request(
            &req("OPTIONS", "sip:c@d", "Require: nothere, 100rel\r\n", ""),
            &p,
        )
        .expect_err("420");
        assert_eq!(r.status(), Some(420));
        assert_eq!(r.header(HeaderName::Unsupported), Some("nothere"));
        let r = check_request(
            &req(
                "INVITE",
                "sip:c@d",
                "Content-Type: application/x-foo\r\n",
                "abc",
            ),
            &p,
        )
        .expect_err("415");
        assert_eq!(r.status(), Some(415));
        assert!(
            r.header(HeaderName::Accept)
                .is_some_and(|a| a.contains("application/sdp"))
        );
        assert_eq!(
            status(check_request(
                &req(
                    "INVITE",
                    "sip:c@d",
                    "Content-Type: application/sdp\r\nContent-Encoding: gzip\r\n",
                    "abc"
                ),
                &p
            )),
            Some(415)
        );
        assert_eq!(
            status(check_request(
                &req(
                    "INVITE",
                    "sip:c@d",
                    "Content-Type: application/sdp\r\n",
                    "v=0"
                ),
                &p
            )),
            None
        );
        assert_eq!(
            status(check_request(
                &req("INVITE", "sip:c@d", "Accept: text/nonsense\r\n", ""),
                &p
            )),
            Some(406)
        );
        assert_eq!(
            status(check_request(
                &req(
                    "INVITE",
                    "sip:c@d",
                    "Accept: application/sdp;level=1, text/plain\r\n",
                    ""
                ),
                &p
            )),
            None
        );
    }

    #[test]
    fn ack_is_never_refused() {
        let p = UasPolicy {
            methods: vec![],
            ..UasPolicy::default()
        };
        assert!(check_request(&req("ACK", "foo:c@d", "Require: x\r\n", ""), &p).is_ok());
    }
}
