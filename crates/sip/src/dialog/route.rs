//! Text-level reading of route URIs.
//!
//! `uri.rs` is still a placeholder without parameter access, so the two
//! questions routing asks of a URI — does it carry `;lr`, and what is it as
//! a Request-URI — are answered from the URI text here. Once `Uri::as_sip`
//! and `SipUri::lr` exist, only this file needs to change.

/// The `;name[=value]` URI parameters of `uri_text` (headers excluded).
fn uri_params(uri_text: &str) -> impl Iterator<Item = (&str, Option<&str>)> {
    let (_, params) = split_params(uri_text);
    params
        .split(';')
        .filter(|p| !p.is_empty())
        .map(|p| match p.split_once('=') {
            Some((n, v)) => (n.trim(), Some(v.trim())),
            None => (p.trim(), None),
        })
}

/// Splits a URI into the part before its parameters and the parameter text
/// (without the leading `;`), dropping any `?headers`. The user part may
/// hold `;` (RFC 3261 `user-unreserved`), so parameters are looked for only
/// after the last `@`; `@` cannot appear in a parameter.
fn split_params(uri_text: &str) -> (&str, &str) {
    let no_headers = uri_text.split_once('?').map_or(uri_text, |(a, _)| a);
    let host_at = no_headers.rfind('@').map_or(0, |i| i + 1);
    match no_headers[host_at..].find(';') {
        Some(j) => (&no_headers[..host_at + j], &no_headers[host_at + j + 1..]),
        None => (no_headers, ""),
    }
}

/// Whether a route URI marks a loose router (RFC 3261 §19.1.1 `lr`).
pub(crate) fn has_lr(uri_text: &str) -> bool {
    uri_params(uri_text).any(|(n, _)| n.eq_ignore_ascii_case("lr"))
}

/// A route URI made fit for a Request-URI, for strict routing (§12.2.1.1):
/// the §19.1.1 table allows neither the `method` parameter nor headers there.
pub(crate) fn as_request_uri(uri_text: &str) -> String {
    let (head, params) = split_params(uri_text);
    let mut out = String::with_capacity(uri_text.len());
    out.push_str(head);
    for p in params.split(';').filter(|p| !p.is_empty()) {
        let name = p.split_once('=').map_or(p, |(n, _)| n).trim();
        if !name.eq_ignore_ascii_case("method") {
            out.push(';');
            out.push_str(p);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lr_is_found_only_among_uri_parameters() {
        assert!(has_lr("sip:ss1.atlanta.example.com;lr"));
        assert!(has_lr("sip:p.example.com;transport=tcp;LR"));
        assert!(has_lr("sip:p.example.com;lr=on"));
        assert!(!has_lr("sip:p.example.com;transport=tcp"));
        // In the user part or in headers it is not a parameter.
        assert!(!has_lr("sip:x;lr@p.example.com"));
        assert!(!has_lr("sip:p.example.com?lr"));
        assert!(!has_lr("sip:p.example.com;lrx"));
    }

    #[test]
    fn request_uri_drops_method_and_headers() {
        assert_eq!(
            as_request_uri("sip:p1.example.com;transport=udp;method=INVITE?X-A=b"),
            "sip:p1.example.com;transport=udp"
        );
        assert_eq!(
            as_request_uri("sip:u;x@p1.example.com;maddr=192.0.2.1"),
            "sip:u;x@p1.example.com;maddr=192.0.2.1"
        );
        assert_eq!(as_request_uri("sip:p1.example.com"), "sip:p1.example.com");
    }
}
