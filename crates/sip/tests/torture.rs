//! RFC 4475 (SIP torture tests) and RFC 5118 (IPv6 torture tests): every
//! message, with the reaction the RFC asks for and the field values it says
//! a parser must read. The vectors and their expectations are in
//! `tests/vectors/MANIFEST.tsv` (see its README).

use std::path::Path;

use sip::uas::{UasPolicy, check_request, response_is_for_us};
use sip::{HeaderName, Message, parse_datagram};

struct Vector {
    file: String,
    reaction: String,
    checks: Vec<(String, String)>,
}

fn unescape(v: &str) -> String {
    let mut out = Vec::new();
    let b = v.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 1 < b.len() {
            match b[i + 1] {
                b'x' if i + 3 < b.len() => {
                    let hex = std::str::from_utf8(&b[i + 2..i + 4]).expect("hex");
                    out.push(u8::from_str_radix(hex, 16).expect("hex byte"));
                    i += 4;
                    continue;
                }
                c => {
                    out.push(c);
                    i += 2;
                    continue;
                }
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8(out).expect("checks are UTF-8")
}

/// Splits `checks` on `;` not escaped by `\`.
fn split_checks(s: &str) -> Vec<(String, String)> {
    let mut items = Vec::new();
    let mut cur = String::new();
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                cur.push('\\');
                if let Some(n) = chars.next() {
                    cur.push(n);
                }
            }
            ';' => items.push(std::mem::take(&mut cur)),
            _ => cur.push(c),
        }
    }
    if !cur.is_empty() {
        items.push(cur);
    }
    items
        .into_iter()
        .filter_map(|item| {
            let (k, v) = item.split_once('=')?;
            Some((k.to_string(), v.to_string()))
        })
        .collect()
}

fn vectors() -> Vec<Vector> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/vectors");
    let manifest = std::fs::read_to_string(dir.join("MANIFEST.tsv")).expect("manifest");
    manifest
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            let cols: Vec<&str> = l.split('\t').collect();
            Vector {
                file: cols[0].to_string(),
                reaction: cols[3].to_string(),
                checks: split_checks(cols.get(4).copied().unwrap_or("")),
            }
        })
        .collect()
}

fn load(v: &Vector) -> Vec<u8> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/vectors")
        .join(&v.file);
    std::fs::read(path).expect("vector file")
}

/// Reads one field the way the manifest names it.
fn field(m: &Message, key: &str) -> Option<String> {
    let uri_sip = || m.request_uri().and_then(|u| u.as_sip());
    Some(match key {
        "method" => m.method()?.to_string(),
        "status" => m.status()?.to_string(),
        "reason_phrase" => m.reason().filter(|r| !r.is_empty())?.to_string(),
        "ruri" => m.request_uri_text()?.into_owned(),
        "ruri_scheme" => m.request_uri()?.scheme().to_string(),
        "ruri_user" => uri_sip()?.user.clone()?,
        "ruri_host" => uri_sip()?.host.to_string(),
        "ruri_port" => uri_sip()?.port?.to_string(),
        "via_count" => m.values(HeaderName::Via).count().to_string(),
        "top_via_host" => m.top_via().ok()?.host.to_string(),
        "top_via_port" => m.top_via().ok()?.port?.to_string(),
        "top_via_branch" => m.top_via().ok()?.branch()?.to_string(),
        "call_id" => m.call_id()?.to_string(),
        "cseq_num" => m.cseq()?.seq.to_string(),
        "cseq_method" => m.cseq()?.method.to_string(),
        "from_tag" => m.from_tag()?.to_string(),
        "to_tag" => m.to_tag()?.to_string(),
        "to_display" => m.to_header().ok()?.display?.into_owned(),
        "from_display" => m.from_header().ok()?.display?.into_owned(),
        "contact_count" => m.values(HeaderName::Contact).count().to_string(),
        "max_forwards" => m.max_forwards()?.to_string(),
        "content_length" => {
            let v = m.header(HeaderName::ContentLength)?.trim();
            v.parse::<u64>()
                .map_or_else(|_| v.to_string(), |n| n.to_string())
        }
        "body_len" => m.body().len().to_string(),
        other => panic!("unknown check key {other}"),
    })
}

fn assert_checks(v: &Vector, m: &Message) {
    for (key, expected) in &v.checks {
        let expected = unescape(expected);
        match key.as_str() {
            "header_present" => assert!(
                m.header_by_name(&expected).is_some(),
                "{}: header {expected} missing",
                v.file
            ),
            "header_value" => {
                let (name, value) = expected.split_once(':').expect("Name:value");
                let found: Vec<String> = m
                    .headers()
                    .filter(|h| {
                        let known = HeaderName::from_wire(name.as_bytes());
                        if known == HeaderName::Other {
                            h.raw_name.eq_ignore_ascii_case(name)
                        } else {
                            h.name == known
                        }
                    })
                    .map(|h| unfolded(h.value))
                    .collect();
                assert!(
                    found.iter().any(|f| f == value),
                    "{}: {name} value {value:?} not among {found:?}",
                    v.file
                );
            }
            _ => {
                let got = field(m, key);
                // Schemes are case-insensitive (RFC 3986 §3.1); the URI
                // module gives them in lower case.
                let expected = if key == "ruri_scheme" {
                    expected.to_ascii_lowercase()
                } else {
                    expected
                };
                if expected.is_empty() {
                    assert_eq!(got, None, "{}: {key} should be absent", v.file);
                } else if key.ends_with("_host") {
                    // IPv6 hosts compare as addresses: `[::192.0.2.1]` and
                    // `[::c000:201]` are one host.
                    let want = sip::uri::Host::parse(&expected).expect("host");
                    let got = got.and_then(|g| sip::uri::Host::parse(&g).ok());
                    assert_eq!(got, Some(want), "{}: {key}", v.file);
                } else {
                    assert_eq!(got.as_deref(), Some(expected.as_str()), "{}: {key}", v.file);
                }
            }
        }
    }
}

/// Unknown headers keep their folding on the wire; compare them unfolded.
fn unfolded(v: &str) -> String {
    v.split("\r\n")
        .map(|l| l.trim_start_matches([' ', '\t']))
        .collect::<Vec<_>>()
        .join(" ")
}

#[test]
fn manifest_is_complete() {
    let v = vectors();
    assert_eq!(
        v.iter().filter(|v| v.file.starts_with("rfc4475/")).count(),
        49
    );
    assert_eq!(
        v.iter().filter(|v| v.file.starts_with("rfc5118/")).count(),
        12
    );
}

#[test]
fn every_vector_gets_the_rfc_reaction() {
    let policy = UasPolicy::default();
    let mut failures = Vec::new();
    for v in vectors() {
        let data = load(&v);
        let parsed = parse_datagram(data.clone());
        let r = v.reaction.as_str();
        let outcome = match (&parsed, r) {
            (Ok(m), "parse") => {
                assert_checks(&v, m);
                // A message that parses forwards unchanged.
                let again = parse_datagram(m.to_bytes()).map(|a| a.to_bytes());
                if again.as_deref().ok() != Some(&m.to_bytes()[..]) {
                    Err("does not re-serialize identically".to_string())
                } else {
                    Ok(())
                }
            }
            (Err(e), "400" | "400-or-lenient") => {
                if e.status != 400 || e.reason.is_empty() {
                    Err(format!("got {} {}", e.status, e.reason))
                } else if e.response().is_none() && !has_echo_headers(&data) {
                    // A request too broken to echo is dropped: the RFC's
                    // other reaction.
                    Ok(())
                } else if e.response().is_none() {
                    Err("no 400 built although it could be answered".into())
                } else {
                    Ok(())
                }
            }
            (Err(e), "505") if e.status == 505 && e.response().is_some() => Ok(()),
            // Pinned down by `strictness_where_the_rfc_allows_a_choice`.
            (Ok(_), "400-or-lenient") => Ok(()),
            (Err(e), "drop") if e.response().is_none() => Ok(()),
            (Ok(m), "parse-then-app-drop") => {
                assert_checks(&v, m);
                if response_is_for_us(m) {
                    Err("response not discarded".into())
                } else {
                    Ok(())
                }
            }
            (Ok(m), app) if app.starts_with("parse-then-app-") => {
                assert_checks(&v, m);
                let want = &app["parse-then-app-".len()..];
                let lenient = want.ends_with("-or-lenient");
                let code: u16 = want.trim_end_matches("-or-lenient").parse().expect("code");
                match check_request(m, &policy) {
                    Err(resp) if resp.status() == Some(code) => Ok(()),
                    Ok(()) if lenient => Ok(()),
                    Err(resp) => Err(format!("app answered {:?}, want {code}", resp.status())),
                    Ok(()) => Err(format!("app accepted, want {code}")),
                }
            }
            // CSeq method mismatches are caught by the parser itself; the
            // RFC's reaction (400, or for an unknown method 400 as well as
            // 501) is the same.
            (Err(e), "parse-then-app-400" | "parse-then-app-501") if e.status == 400 => {
                if e.response().is_some() {
                    Ok(())
                } else {
                    Err("no 400 built".into())
                }
            }
            (Ok(_), _) => Err(format!("parsed, but the RFC wants {r}")),
            (Err(e), _) => Err(format!(
                "rejected ({} {}), but the RFC wants {r}",
                e.status, e.reason
            )),
        };
        if let Err(why) = outcome {
            failures.push(format!("{}: {why}", v.file));
        }
    }
    assert!(
        failures.is_empty(),
        "{} vectors failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

fn has_echo_headers(data: &[u8]) -> bool {
    let text = String::from_utf8_lossy(data).to_ascii_lowercase();
    ["\ncall-id:", "\nfrom:", "\nto:", "\ncseq:", "\nvia:"]
        .iter()
        .all(|h| text.contains(h))
}

/// RFC 4475 names the strict choice for these: tandem rejects rather than
/// repairs, so a broken message is never forwarded half-understood.
#[test]
fn strictness_where_the_rfc_allows_a_choice() {
    let mut lenient = Vec::new();
    for v in vectors().iter().filter(|v| v.reaction == "400-or-lenient") {
        if parse_datagram(load(v)).is_ok() {
            lenient.push(v.file.clone());
        }
    }
    // baddate: RFC 4475 §3.1.2.12 says an element should not reject a
    // request for its Date unless it uses the Date; tandem does not.
    assert_eq!(lenient, vec!["rfc4475/baddate.dat".to_string()]);
}

/// The 400s name what was wrong (the issue asks for a reason phrase that
/// tells the peer what to fix).
#[test]
fn reason_phrases_name_the_fault() {
    let cases = [
        ("rfc4475/clerr.dat", "Content-Length"),
        ("rfc4475/ncl.dat", "Content-Length"),
        ("rfc4475/scalar02.dat", "CSeq"),
        ("rfc4475/multi01.dat", "Multiple"),
        ("rfc4475/mcl01.dat", "Content-Length"),
        ("rfc4475/insuf.dat", "Missing"),
        ("rfc4475/ltgtruri.dat", "Request"),
        ("rfc4475/quotbal.dat", "To"),
        ("rfc5118/ipv6-bad.dat", "Request-URI"),
    ];
    for (file, word) in cases {
        let v = Vector {
            file: file.into(),
            reaction: String::new(),
            checks: vec![],
        };
        let e = parse_datagram(load(&v)).expect_err(file);
        assert!(
            e.reason.contains(word),
            "{file}: reason {:?} should mention {word}",
            e.reason
        );
    }
}
