use super::digest::h;
use super::*;

const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";
const REALM: &str = "sip.example.com";
const NOW: u64 = 1_700_000_000;

fn server() -> DigestServer {
    DigestServer::with_seed(REALM, SECRET, 7)
}

/// Challenge → header text → parse → respond → header text → parse, as
/// between a real registrar and phone.
fn answer(
    server: &DigestServer,
    alg: Algorithm,
    password: &str,
    nc: u32,
) -> (Challenge, Credentials) {
    let ch = Challenge::parse(&server.challenge(NOW, alg, false).to_string()).expect("challenge");
    let creds = respond(
        &ch,
        "alice",
        password,
        "REGISTER",
        "sip:sip.example.com",
        None,
        "c0ffee42",
        nc,
    )
    .expect("respond");
    let creds = Credentials::parse(&creds.to_string()).expect("credentials");
    (ch, creds)
}

fn alice_ha1(alg: Algorithm) -> String {
    ha1(alg, "alice", REALM, "s3cret")
}

// --- published vectors -------------------------------------------------

#[test]
fn rfc2617_mufasa() {
    let ch = Challenge::parse(
        "Digest realm=\"testrealm@host.com\", qop=\"auth,auth-int\", \
         nonce=\"dcd98b7102dd2f0e8b11d0f600bfb0c093\", \
         opaque=\"5ccc069c403ebaf9f0171e9517f40e41\"",
    )
    .expect("parse");
    assert_eq!(ch.qop, vec![Qop::Auth, Qop::AuthInt]);
    assert_eq!(
        ha1(
            Algorithm::Md5,
            "Mufasa",
            "testrealm@host.com",
            "Circle Of Life"
        ),
        "939e7578ed9e3c518a452acee763bce9"
    );
    let c = respond(
        &ch,
        "Mufasa",
        "Circle Of Life",
        "GET",
        "/dir/index.html",
        None,
        "0a4f113b",
        1,
    )
    .expect("respond");
    assert_eq!(c.response, "6629fae49393a05397450978507c4ef1");
    assert_eq!(c.qop, Some(Qop::Auth));
    assert_eq!(c.nc, Some(1));
    assert_eq!(
        c.opaque.as_deref(),
        Some("5ccc069c403ebaf9f0171e9517f40e41")
    );
    assert_eq!(
        c.algorithm, None,
        "no algorithm in the challenge, none echoed"
    );

    // The RFC's own Authorization header parses to the same values.
    let parsed = Credentials::parse(
        "Digest username=\"Mufasa\",\r\n realm=\"testrealm@host.com\",\r\n \
         nonce=\"dcd98b7102dd2f0e8b11d0f600bfb0c093\",\r\n uri=\"/dir/index.html\",\r\n \
         qop=auth,\r\n nc=00000001,\r\n cnonce=\"0a4f113b\",\r\n \
         response=\"6629fae49393a05397450978507c4ef1\",\r\n \
         opaque=\"5ccc069c403ebaf9f0171e9517f40e41\"",
    )
    .expect("parse");
    assert_eq!(parsed, c);
}

const RFC7616_CHALLENGE: &str = "Digest realm=\"http-auth@example.org\", qop=\"auth, auth-int\", \
     algorithm=ALG, nonce=\"7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v\", \
     opaque=\"FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS\"";

fn rfc7616_response(alg: &str, password: &str) -> Credentials {
    let ch = Challenge::parse(&RFC7616_CHALLENGE.replace("ALG", alg)).expect("parse");
    respond(
        &ch,
        "Mufasa",
        password,
        "GET",
        "/dir/index.html",
        None,
        "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ",
        1,
    )
    .expect("respond")
}

/// RFC 7616 §3.9.1. Its published responses are consistent with the
/// password "Circle of Life" (lowercase "of"), not RFC 2617's
/// "Circle Of Life" — the two examples use different passwords.
#[test]
fn rfc7616_md5_and_sha256() {
    let md5 = rfc7616_response("MD5", "Circle of Life");
    assert_eq!(md5.response, "8ca523f5e9506fed4657c9700eebdbec");
    assert_eq!(md5.algorithm, Some(Algorithm::Md5));
    assert_eq!(
        md5.opaque.as_deref(),
        Some("FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS")
    );
    let sha = rfc7616_response("SHA-256", "Circle of Life");
    assert_eq!(
        sha.response,
        "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1"
    );
    assert_eq!(sha.qop, Some(Qop::Auth), "auth preferred over auth-int");
    assert!(sha.to_string().contains("algorithm=SHA-256"));

    // With RFC 2617's capitalisation neither published value comes out.
    assert_ne!(
        rfc7616_response("MD5", "Circle Of Life").response,
        "8ca523f5e9506fed4657c9700eebdbec"
    );
    assert_ne!(
        rfc7616_response("SHA-256", "Circle Of Life").response,
        "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1"
    );
}

#[test]
fn sha512_256_is_the_fips_function() {
    // FIPS 180-4 test vector for SHA-512/256("abc").
    assert_eq!(
        h(Algorithm::Sha512_256, &[b"abc"]),
        "53048e2681941ef99b2e29b76b4c7dabe4c2d0c634fc6d46e0e2f13107e7af23"
    );
    assert_eq!(
        h(Algorithm::Sha256Sess, &[b"a", b"b"]),
        h(Algorithm::Sha256, &[b"a:b"])
    );
}

// --- server round trips ---------------------------------------------------

#[test]
fn round_trip_every_algorithm() {
    let s = server();
    for alg in Algorithm::ALL {
        let (ch, creds) = answer(&s, alg, "s3cret", 1);
        assert_eq!(ch.algorithm, Some(alg));
        assert_eq!(creds.algorithm, Some(alg));
        assert_eq!(creds.response.len(), alg.hex_len());
        assert_eq!(
            s.verify(NOW + 10, "REGISTER", &creds, &alice_ha1(alg), None),
            Ok(()),
            "{alg}"
        );
    }
    assert_eq!(s.tracked_nonces(), Algorithm::ALL.len());
}

#[test]
fn nonces_are_fresh_compact_and_deterministic_with_a_seed() {
    let a = server().challenge(NOW, Algorithm::Md5, false);
    let b = server().challenge(NOW, Algorithm::Md5, false);
    assert_eq!(a.nonce, b.nonce, "same seed, same nonce");
    let s = server();
    let n1 = s.challenge(NOW, Algorithm::Md5, false).nonce;
    let n2 = s.challenge(NOW, Algorithm::Md5, false).nonce;
    assert_ne!(n1, n2);
    assert_eq!(n1.len(), 54);
    assert!(
        n1.bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_')
    );
    let text = s.challenge(NOW, Algorithm::Sha256, true).to_string();
    assert!(text.starts_with("Digest realm=\"sip.example.com\", nonce=\""));
    assert!(text.ends_with("\", stale=true, algorithm=SHA-256, qop=\"auth\""));
}

#[test]
fn wrong_password_is_bad_response() {
    let s = server();
    let (_, creds) = answer(&s, Algorithm::Md5, "guess", 1);
    assert_eq!(
        s.verify(NOW, "REGISTER", &creds, &alice_ha1(Algorithm::Md5), None),
        Err(AuthError::BadResponse)
    );
    // A failed attempt does not consume the nonce.
    let (_, good) = answer(&s, Algorithm::Md5, "s3cret", 1);
    assert_eq!(s.tracked_nonces(), 0);
    assert_eq!(
        s.verify(NOW, "REGISTER", &good, &alice_ha1(Algorithm::Md5), None),
        Ok(())
    );
}

#[test]
fn method_and_uri_are_covered() {
    let s = server();
    let (_, creds) = answer(&s, Algorithm::Sha256, "s3cret", 1);
    let ha1 = alice_ha1(Algorithm::Sha256);
    assert_eq!(
        s.verify(NOW, "INVITE", &creds, &ha1, None),
        Err(AuthError::BadResponse)
    );
    let mut moved = creds.clone();
    moved.uri = "sip:elsewhere.example.com".into();
    assert_eq!(
        s.verify(NOW, "REGISTER", &moved, &ha1, None),
        Err(AuthError::BadResponse)
    );
}

#[test]
fn replayed_nonce_count_is_rejected() {
    let s = server();
    let ha1 = alice_ha1(Algorithm::Md5);
    let ch = s.challenge(NOW, Algorithm::Md5, false);
    let with_nc =
        |nc| respond(&ch, "alice", "s3cret", "REGISTER", "sip:x", None, "cn", nc).expect("respond");
    assert_eq!(s.verify(NOW, "REGISTER", &with_nc(1), &ha1, None), Ok(()));
    assert_eq!(
        s.verify(NOW, "REGISTER", &with_nc(1), &ha1, None),
        Err(AuthError::Replay)
    );
    assert_eq!(s.verify(NOW, "REGISTER", &with_nc(3), &ha1, None), Ok(()));
    assert_eq!(
        s.verify(NOW, "REGISTER", &with_nc(2), &ha1, None),
        Err(AuthError::Replay),
        "lower than the highest seen"
    );
    assert_eq!(s.verify(NOW, "REGISTER", &with_nc(4), &ha1, None), Ok(()));
    assert_eq!(s.tracked_nonces(), 1);
}

#[test]
fn without_qop_a_nonce_is_single_use() {
    let s = server();
    let mut ch = s.challenge(NOW, Algorithm::Md5, false);
    ch.qop.clear();
    ch.algorithm = None;
    let c = respond(
        &ch, "alice", "s3cret", "REGISTER", "sip:x", None, "unused", 1,
    )
    .expect("respond");
    assert_eq!(
        (c.qop.as_ref(), c.nc, c.cnonce.as_ref()),
        (None, None, None)
    );
    let text = c.to_string();
    assert!(!text.contains("qop=") && !text.contains("nc=") && !text.contains("cnonce="));
    let c = Credentials::parse(&text).expect("parse");
    let ha1 = alice_ha1(Algorithm::Md5);
    assert_eq!(s.verify(NOW, "REGISTER", &c, &ha1, None), Ok(()));
    assert_eq!(
        s.verify(NOW, "REGISTER", &c, &ha1, None),
        Err(AuthError::Replay)
    );
}

#[test]
fn expired_nonce_is_stale_only_with_the_right_password() {
    let s = server().with_lifetime(60);
    let ha1 = alice_ha1(Algorithm::Sha256);
    let (_, good) = answer(&s, Algorithm::Sha256, "s3cret", 1);
    let (_, bad) = answer(&s, Algorithm::Sha256, "guess", 1);
    assert_eq!(
        s.verify(NOW + 61, "REGISTER", &good, &ha1, None),
        Err(AuthError::Stale)
    );
    assert_eq!(
        s.verify(NOW + 61, "REGISTER", &bad, &ha1, None),
        Err(AuthError::BadResponse)
    );
    // Far-future timestamps (a clock that jumped back) are not fresh either.
    assert_eq!(
        s.verify(NOW - 61, "REGISTER", &good, &ha1, None),
        Err(AuthError::Stale)
    );
    assert_eq!(s.verify(NOW + 60, "REGISTER", &good, &ha1, None), Ok(()));
    assert_eq!(
        DigestServer::new(REALM, SECRET).lifetime(),
        DEFAULT_NONCE_LIFETIME
    );
}

#[test]
fn tampered_or_foreign_nonce_is_bad_nonce() {
    let s = server();
    let ha1 = alice_ha1(Algorithm::Md5);
    let (_, creds) = answer(&s, Algorithm::Md5, "s3cret", 1);

    // Flip one character of the nonce (and answer it correctly, as an
    // attacker who knows the password but wants a fresher timestamp would).
    for pos in [0, 10, 30, 53] {
        let mut bytes = creds.nonce.clone().into_bytes();
        bytes[pos] = if bytes[pos] == b'A' { b'B' } else { b'A' };
        let mut ch = s.challenge(NOW, Algorithm::Md5, false);
        ch.nonce = String::from_utf8(bytes).expect("ascii");
        let forged =
            respond(&ch, "alice", "s3cret", "REGISTER", "sip:x", None, "c", 1).expect("respond");
        assert_eq!(
            s.verify(NOW, "REGISTER", &forged, &ha1, None),
            Err(AuthError::BadNonce),
            "pos {pos}"
        );
    }
    for garbled in [
        "",
        "abc",
        "!!!!",
        &creds.nonce[..53],
        &format!("{}A", creds.nonce),
    ] {
        let mut c = creds.clone();
        c.nonce = garbled.to_owned();
        assert_eq!(
            s.verify(NOW, "REGISTER", &c, &ha1, None),
            Err(AuthError::BadNonce),
            "{garbled:?}"
        );
    }
    // Another secret, or the same secret for another realm: not ours.
    let other_secret = DigestServer::with_seed(REALM, b"another secret", 7);
    assert_eq!(
        other_secret.verify(NOW, "REGISTER", &creds, &ha1, None),
        Err(AuthError::BadNonce)
    );
    let other_realm = DigestServer::with_seed("other.example.com", SECRET, 7);
    let (_, theirs) = answer(&other_realm, Algorithm::Md5, "s3cret", 1);
    let mut relabelled = theirs.clone();
    relabelled.realm = REALM.into();
    assert_eq!(
        s.verify(NOW, "REGISTER", &relabelled, &ha1, None),
        Err(AuthError::BadNonce)
    );
}

#[test]
fn wrong_realm() {
    let s = server();
    let other = DigestServer::with_seed("other.example.com", SECRET, 7);
    let (_, creds) = answer(&other, Algorithm::Md5, "s3cret", 1);
    assert_eq!(
        s.verify(NOW, "REGISTER", &creds, &alice_ha1(Algorithm::Md5), None),
        Err(AuthError::WrongRealm)
    );
}

#[test]
fn unsupported_algorithms() {
    assert_eq!(
        Challenge::parse("Digest realm=\"r\", nonce=\"n\", algorithm=SHA3-256"),
        Err(AuthError::UnsupportedAlgorithm)
    );
    assert_eq!(
        Credentials::parse(
            "Digest username=\"u\", realm=\"r\", nonce=\"n\", uri=\"sip:r\", response=\"x\", algorithm=\"foo\""
        ),
        Err(AuthError::UnsupportedAlgorithm)
    );
    assert_eq!("sha-256-SESS".parse(), Ok(Algorithm::Sha256Sess));

    let md5_only = server().with_algorithms(&[Algorithm::Md5]);
    let (_, sha) = answer(&md5_only, Algorithm::Sha256, "s3cret", 1);
    assert_eq!(
        md5_only.verify(NOW, "REGISTER", &sha, &alice_ha1(Algorithm::Sha256), None),
        Err(AuthError::UnsupportedAlgorithm)
    );
    // The store only has an MD5 HA1 but the phone answered SHA-256.
    let s = server();
    let (_, sha) = answer(&s, Algorithm::Sha256, "s3cret", 1);
    assert_eq!(
        s.verify(NOW, "REGISTER", &sha, &alice_ha1(Algorithm::Md5), None),
        Err(AuthError::UnsupportedAlgorithm)
    );
}

#[test]
fn malformed_credentials_for_verify() {
    let s = server();
    let ha1 = alice_ha1(Algorithm::Md5);
    let (_, creds) = answer(&s, Algorithm::Md5, "s3cret", 1);
    let mut c = creds.clone();
    c.uri.clear();
    assert_eq!(
        s.verify(NOW, "REGISTER", &c, &ha1, None),
        Err(AuthError::Malformed("missing uri"))
    );
    let mut c = creds.clone();
    c.nc = None;
    assert_eq!(
        s.verify(NOW, "REGISTER", &c, &ha1, None),
        Err(AuthError::Malformed("qop without nc"))
    );
    let mut c = creds.clone();
    c.cnonce = None;
    assert_eq!(
        s.verify(NOW, "REGISTER", &c, &ha1, None),
        Err(AuthError::Malformed("qop without cnonce"))
    );
    let mut c = creds.clone();
    c.qop = Some(Qop::Other("auth-conf".into()));
    assert_eq!(
        s.verify(NOW, "REGISTER", &c, &ha1, None),
        Err(AuthError::Malformed("unsupported qop"))
    );
    assert_eq!(
        Credentials::parse("Digest username=\"u\", realm=\"r\", nonce=\"n\", response=\"x\""),
        Err(AuthError::Malformed("credentials without uri"))
    );
    // Nothing was recorded by the failures: the original still verifies.
    assert_eq!(s.verify(NOW, "REGISTER", &creds, &ha1, None), Ok(()));
}

#[test]
fn auth_int_covers_the_body() {
    let s = server();
    let mut ch = s.challenge(NOW, Algorithm::Sha256, false);
    ch.qop = vec![Qop::AuthInt];
    let body = b"v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\n";
    let c = respond(
        &ch,
        "alice",
        "s3cret",
        "INVITE",
        "sip:bob@x",
        Some(body),
        "cn",
        1,
    )
    .expect("respond");
    assert_eq!(c.qop, Some(Qop::AuthInt));
    assert!(c.to_string().contains("qop=auth-int"));
    let ha1 = alice_ha1(Algorithm::Sha256);
    assert_eq!(
        s.verify(NOW, "INVITE", &c, &ha1, Some(b"v=0\r\n")),
        Err(AuthError::BadResponse)
    );
    assert_eq!(s.verify(NOW, "INVITE", &c, &ha1, Some(body)), Ok(()));
}

#[test]
fn userhash_hides_the_username() {
    let s = server();
    let mut ch = s.challenge(NOW, Algorithm::Sha256, false);
    ch.userhash = true;
    let ch = Challenge::parse(&ch.to_string()).expect("parse");
    assert!(ch.userhash);
    let c = respond(&ch, "alice", "s3cret", "REGISTER", "sip:x", None, "cn", 1).expect("respond");
    assert!(c.userhash);
    assert_eq!(c.username, userhash(Algorithm::Sha256, "alice", REALM));
    assert_eq!(
        c.username,
        h(Algorithm::Sha256, &[b"alice:sip.example.com"])
    );
    let c = Credentials::parse(&c.to_string()).expect("parse");
    assert!(c.userhash);
    assert_eq!(
        s.verify(NOW, "REGISTER", &c, &alice_ha1(Algorithm::Sha256), None),
        Ok(())
    );
}

#[test]
fn response_and_ha1_case_is_tolerated() {
    let s = server();
    let (_, mut c) = answer(&s, Algorithm::Md5, "s3cret", 1);
    c.response = c.response.to_ascii_uppercase();
    let ha1 = alice_ha1(Algorithm::Md5).to_ascii_uppercase();
    assert_eq!(s.verify(NOW, "REGISTER", &c, &ha1, None), Ok(()));
}

#[test]
fn client_qop_choice_and_argument_checks() {
    let ch = Challenge::parse("Digest realm=\"r\", nonce=\"n\", qop=\"auth-int,auth\"").expect("p");
    let c = respond(&ch, "u", "p", "REGISTER", "sip:r", None, "cn", 1).expect("respond");
    assert_eq!(c.qop, Some(Qop::Auth));
    let ch = Challenge::parse("Digest realm=\"r\", nonce=\"n\", qop=\"auth-conf\"").expect("p");
    assert_eq!(ch.qop, vec![Qop::Other("auth-conf".into())]);
    assert_eq!(
        respond(&ch, "u", "p", "REGISTER", "sip:r", None, "cn", 1),
        Err(AuthError::Malformed("no supported qop offered"))
    );
    let ch = Challenge::parse("Digest realm=\"r\", nonce=\"n\", qop=\"auth\"").expect("p");
    assert_eq!(
        respond(&ch, "u", "p", "REGISTER", "sip:r", None, "", 1),
        Err(AuthError::Malformed("empty cnonce"))
    );
    assert_eq!(
        respond(&ch, "u", "p", "REGISTER", "sip:r", None, "cn", 0),
        Err(AuthError::Malformed("nc starts at 1"))
    );
    let cn = new_cnonce(&mut rand::rng());
    assert_eq!(cn.len(), 16);
    assert_ne!(cn, new_cnonce(&mut rand::rng()));
}

#[test]
fn replay_table_is_bounded_and_safe_when_full() {
    let s = server().with_replay_capacity(2).with_lifetime(100);
    let ha1 = alice_ha1(Algorithm::Md5);
    let at = |t: u64| {
        let ch = s.challenge(t, Algorithm::Md5, false);
        respond(&ch, "alice", "s3cret", "REGISTER", "sip:x", None, "cn", 1).expect("respond")
    };
    let (a, b, c) = (at(NOW), at(NOW + 1), at(NOW + 2));
    let d = at(NOW + 1);
    assert_eq!(s.verify(NOW + 2, "REGISTER", &a, &ha1, None), Ok(()));
    assert_eq!(s.verify(NOW + 2, "REGISTER", &b, &ha1, None), Ok(()));
    assert_eq!(s.verify(NOW + 2, "REGISTER", &c, &ha1, None), Ok(()));
    assert_eq!(s.tracked_nonces(), 2);
    // a was evicted while live; replaying it must not pass as a first use.
    assert_eq!(
        s.verify(NOW + 3, "REGISTER", &a, &ha1, None),
        Err(AuthError::Stale)
    );
    // Still-tracked entries keep their replay protection.
    assert_eq!(
        s.verify(NOW + 3, "REGISTER", &c, &ha1, None),
        Err(AuthError::Replay)
    );
    // d was issued after the watermark, so its first use is accepted; it
    // evicts b, which then cannot be replayed either.
    assert_eq!(s.verify(NOW + 3, "REGISTER", &d, &ha1, None), Ok(()));
    assert_eq!(
        s.verify(NOW + 3, "REGISTER", &b, &ha1, None),
        Err(AuthError::Stale)
    );
    // Once everything has expired, a full table sheds expired entries only.
    let f = at(NOW + 200);
    assert_eq!(s.verify(NOW + 200, "REGISTER", &f, &ha1, None), Ok(()));
    assert_eq!(s.tracked_nonces(), 1);
}

// --- header parsing and formatting ---------------------------------------

#[test]
fn parsing_is_lenient_where_sip_is() {
    let ch = Challenge::parse(
        "  dIgEsT\r\n\tREALM = \"a \\\"quoted\\\" realm\\\\\" ,, NONCE=abc/def==,\r\n qop=auth ,\
         Stale=TRUE, Algorithm=md5-SESS, domain=\"sip:a sip:b\", x-vendor=\"v,1\", tok=1, ",
    )
    .expect("parse");
    assert_eq!(ch.realm, "a \"quoted\" realm\\");
    assert_eq!(ch.nonce, "abc/def==");
    assert_eq!(ch.qop, vec![Qop::Auth]);
    assert!(ch.stale);
    assert_eq!(ch.algorithm, Some(Algorithm::Md5Sess));
    assert_eq!(ch.domain.as_deref(), Some("sip:a sip:b"));
    assert_eq!(
        ch.extra,
        vec![
            ("x-vendor".to_owned(), "v,1".to_owned()),
            ("tok".to_owned(), "1".to_owned())
        ]
    );
    let text = ch.to_string();
    assert_eq!(
        text,
        "Digest realm=\"a \\\"quoted\\\" realm\\\\\", domain=\"sip:a sip:b\", \
         nonce=\"abc/def==\", stale=true, algorithm=MD5-sess, qop=\"auth\", \
         x-vendor=\"v,1\", tok=1"
    );
    assert_eq!(Challenge::parse(&text), Ok(ch));

    let c = Credentials::parse(
        "Digest username=\"alice\",realm=\"r\",nonce=\"n\",uri=\"sip:r;transport=tcp\",\
         response=\"abc\",qop=\"auth\",nc=0000000A,cnonce=\"x\",username*=UTF-8''al%C3%AFce,\
         userhash=FALSE",
    )
    .expect("parse");
    assert_eq!(c.qop, Some(Qop::Auth));
    assert_eq!(c.nc, Some(10));
    assert!(!c.userhash);
    assert_eq!(
        c.extra,
        vec![("username*".to_owned(), "UTF-8''al%C3%AFce".to_owned())]
    );
    assert_eq!(
        c.to_string(),
        "Digest username=\"alice\", realm=\"r\", nonce=\"n\", uri=\"sip:r;transport=tcp\", \
         response=\"abc\", cnonce=\"x\", qop=auth, nc=0000000a, username*=UTF-8''al%C3%AFce"
    );
    assert_eq!(Credentials::parse(&c.to_string()), Ok(c));
}

#[test]
fn parse_errors() {
    let cases: &[(&str, &str)] = &[
        ("", "scheme is not Digest"),
        ("Basic realm=\"r\"", "scheme is not Digest"),
        ("Digestrealm=\"r\"", "scheme is not Digest"),
        ("Digest", "no parameters"),
        ("Digest   ", "no parameters"),
        (
            "Digest realm=\"r\", realm=\"s\", nonce=n",
            "duplicate parameter",
        ),
        (
            "Digest realm=\"r\", REALM=\"s\", nonce=n",
            "duplicate parameter",
        ),
        ("Digest realm=\"r, nonce=n", "unterminated quoted string"),
        ("Digest realm=\"r\\", "unterminated quoted string"),
        ("Digest realm \"r\"", "expected '=' after parameter name"),
        ("Digest realm=, nonce=n", "empty parameter value"),
        (
            "Digest realm=\"r\" nonce=n",
            "expected ',' between parameters",
        ),
        ("Digest =x", "expected parameter name"),
        (
            "Digest realm=\"a\nb\", nonce=n",
            "control character in quoted string",
        ),
        (
            "Digest realm=\"a\\\nb\", nonce=n",
            "bad escape in quoted string",
        ),
        ("Digest nonce=n", "challenge without realm"),
        ("Digest realm=r", "challenge without nonce"),
    ];
    for (input, reason) in cases {
        assert_eq!(
            Challenge::parse(input),
            Err(AuthError::Malformed(reason)),
            "{input:?}"
        );
    }
    let many = format!(
        "Digest realm=r, nonce=n{}",
        (0..70).map(|i| format!(", p{i}=v")).collect::<String>()
    );
    assert_eq!(
        Challenge::parse(&many),
        Err(AuthError::Malformed("too many parameters"))
    );
    for nc in ["1", "000000001", "0000000g", "\"0000000x\""] {
        let text =
            format!("Digest username=u, realm=r, nonce=n, uri=\"sip:r\", response=x, nc={nc}");
        assert_eq!(
            Credentials::parse(&text),
            Err(AuthError::Malformed("nc is not 8 hex digits")),
            "{nc}"
        );
    }
}

#[test]
fn formatting_cannot_inject_lines() {
    let c = Credentials {
        username: "eve\r\nVia: evil\"".into(),
        realm: "r".into(),
        nonce: "n".into(),
        uri: "sip:r".into(),
        response: "x".into(),
        extra: vec![
            ("bad name".into(), "v".into()),
            ("ok".into(), "a\nb".into()),
        ],
        ..Credentials::default()
    };
    let text = c.to_string();
    assert!(!text.contains('\r') && !text.contains('\n'));
    assert!(!text.contains("bad name"));
    let back = Credentials::parse(&text).expect("reparse");
    assert_eq!(back.username, "eveVia: evil\"");
    assert_eq!(back.extra, vec![("ok".to_owned(), "ab".to_owned())]);
}

/// xorshift64*, so the garbage is the same on every run.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

#[test]
fn garbage_never_panics_and_what_parses_round_trips() {
    let mut rng = XorShift(0x9E37_79B9_7F4A_7C15);
    let pieces: &[&str] = &[
        "Digest ",
        "digest",
        " ",
        ",",
        "=",
        "\"",
        "\\",
        "\r\n ",
        "\t",
        "realm",
        "nonce",
        "username",
        "uri",
        "response",
        "qop",
        "nc",
        "cnonce",
        "algorithm",
        "stale",
        "opaque",
        "userhash",
        "domain",
        "auth",
        "auth-int",
        "MD5",
        "SHA-256-sess",
        "00000001",
        "true",
        "é",
        "\u{0}",
        "\u{7f}",
        "x",
        "ü\"",
        "a,b",
        "sip:a@b",
    ];
    let seeds = [
        RFC7616_CHALLENGE.replace("ALG", "SHA-256"),
        "Digest username=\"Mufasa\", realm=\"testrealm@host.com\", \
         nonce=\"dcd98b7102dd2f0e8b11d0f600bfb0c093\", uri=\"/dir/index.html\", qop=auth, \
         nc=00000001, cnonce=\"0a4f113b\", response=\"6629fae49393a05397450978507c4ef1\""
            .to_owned(),
    ];
    let s = server();
    let ha1 = alice_ha1(Algorithm::Md5);
    let (mut ok, mut err) = (0, 0);
    for i in 0..6000 {
        let input: String = if i % 2 == 0 {
            (0..rng.below(24))
                .map(|_| pieces[rng.below(pieces.len())])
                .collect()
        } else {
            // Mutate a valid header: overwrite, delete or insert bytes.
            let mut bytes = seeds[rng.below(seeds.len())].clone().into_bytes();
            for _ in 0..1 + rng.below(4) {
                let pos = rng.below(bytes.len());
                match rng.below(3) {
                    0 => bytes[pos] = (rng.next() & 0x7f) as u8,
                    1 => {
                        bytes.remove(pos);
                    }
                    _ => bytes.insert(pos, b"\",=\\ \r"[rng.below(6)]),
                }
            }
            String::from_utf8_lossy(&bytes).into_owned()
        };
        match Challenge::parse(&input) {
            Ok(c) => {
                ok += 1;
                assert_eq!(Challenge::parse(&c.to_string()), Ok(c), "{input:?}");
            }
            Err(_) => err += 1,
        }
        match Credentials::parse(&input) {
            Ok(c) => {
                ok += 1;
                assert_eq!(
                    Credentials::parse(&c.to_string()),
                    Ok(c.clone()),
                    "{input:?}"
                );
                // Garbage credentials are never accepted by the server.
                assert!(s.verify(NOW, "REGISTER", &c, &ha1, None).is_err());
            }
            Err(_) => err += 1,
        }
    }
    assert!(ok > 500 && err > 5000, "ok {ok}, err {err}");
}
