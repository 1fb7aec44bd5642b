use std::borrow::Cow;
use std::net::{Ipv4Addr, Ipv6Addr};

use super::*;

fn uri(s: &str) -> Uri {
    Uri::parse(s).unwrap_or_else(|e| panic!("{s:?} should parse: {e}"))
}

fn sip(s: &str) -> SipUri {
    match uri(s) {
        Uri::Sip(u) => u,
        other => panic!("{s:?} is not a SIP URI: {other:?}"),
    }
}

fn tel(s: &str) -> TelUri {
    match uri(s) {
        Uri::Tel(t) => t,
        other => panic!("{s:?} is not a tel URI: {other:?}"),
    }
}

fn err(s: &str) -> UriErrorKind {
    match Uri::parse(s) {
        Ok(u) => panic!("{s:?} should not parse, got {u:?}"),
        Err(e) => e.kind(),
    }
}

fn domain(d: &str) -> Host {
    Host::Domain(d.to_owned())
}

fn v6(s: &str) -> Ipv6Addr {
    s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
}

fn params(list: &[(&str, Option<&str>)]) -> Vec<(String, Option<String>)> {
    list.iter()
        .map(|(n, v)| ((*n).to_owned(), v.map(str::to_owned)))
        .collect()
}

#[test]
fn typical_request_uri() {
    let u = sip("sip:alice@192.0.2.10:5060;transport=udp");
    assert!(!u.secure);
    assert_eq!(u.user.as_deref(), Some("alice"));
    assert_eq!(u.password, None);
    assert_eq!(u.host, Host::V4(Ipv4Addr::new(192, 0, 2, 10)));
    assert_eq!(u.port, Some(5060));
    assert_eq!(u.params, params(&[("transport", Some("udp"))]));
    assert!(u.headers.is_empty());
    assert_eq!(u.transport(), Some("udp"));
    assert_eq!(u.to_string(), "sip:alice@192.0.2.10:5060;transport=udp");
}

#[test]
fn rfc3261_section_19_1_3_examples() {
    let u = sip("sip:alice@atlanta.com");
    assert_eq!(
        (u.user.as_deref(), &u.host, u.port),
        (Some("alice"), &domain("atlanta.com"), None)
    );

    let u = sip("sip:alice:secretword@atlanta.com;transport=tcp");
    assert_eq!(u.user.as_deref(), Some("alice"));
    assert_eq!(u.password.as_deref(), Some("secretword"));
    assert_eq!(u.transport(), Some("tcp"));

    let u = sip("sips:alice@atlanta.com?subject=project%20x&priority=urgent");
    assert!(u.secure);
    assert_eq!(u.default_port(), 5061);
    assert_eq!(
        u.headers,
        vec![
            ("subject".to_owned(), "project x".to_owned()),
            ("priority".to_owned(), "urgent".to_owned())
        ]
    );

    let u = sip("sip:+1-212-555-1212:1234@gateway.com;user=phone");
    assert_eq!(u.user.as_deref(), Some("+1-212-555-1212"));
    assert_eq!(u.password.as_deref(), Some("1234"));
    assert_eq!(u.user_param(), Some("phone"));

    let u = sip("sips:1212@gateway.com");
    assert!(u.secure);
    assert_eq!(u.user.as_deref(), Some("1212"));

    let u = sip("sip:alice@192.0.2.4");
    assert_eq!(u.host, Host::V4(Ipv4Addr::new(192, 0, 2, 4)));

    let u = sip("sip:atlanta.com;method=REGISTER?to=alice%40atlanta.com");
    assert_eq!(u.user, None);
    assert_eq!(u.method_param(), Some("REGISTER"));
    assert_eq!(
        u.headers,
        vec![("to".to_owned(), "alice@atlanta.com".to_owned())]
    );

    let u = sip("sip:alice;day=tuesday@atlanta.com");
    assert_eq!(u.user.as_deref(), Some("alice;day=tuesday"));
    assert!(u.params.is_empty());
}

#[test]
fn scheme_is_case_insensitive() {
    let u = sip("SIP:alice@atlanta.com");
    assert!(!u.secure);
    let u = uri("SiPs:alice@atlanta.com");
    assert_eq!(u.scheme(), "sips");
    assert_eq!(u.as_sip().map(|s| s.secure), Some(true));
    assert_eq!(uri("TEL:+1234").scheme(), "tel");
    assert_eq!(uri("Mailto:a@b").scheme(), "mailto");
    // Canonical output lower-cases the scheme and domain.
    assert_eq!(
        uri("SIP:%61lice@AtLanTa.CoM;Transport=TCP").to_string(),
        "sip:alice@atlanta.com;Transport=TCP"
    );
}

#[test]
fn rfc4475_wsinv_unknown_param() {
    let u = sip("sip:vivekg@chair-dnrc.example.com;unknownparam");
    assert_eq!(u.user.as_deref(), Some("vivekg"));
    assert_eq!(u.host, domain("chair-dnrc.example.com"));
    assert_eq!(u.params, params(&[("unknownparam", None)]));
    assert_eq!(u.param("UNKNOWNPARAM"), Some(None));
    assert_eq!(u.param("other"), None);
}

#[test]
fn rfc4475_intmeth_unusual_userinfo() {
    let u = sip(
        "sip:1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*:&it+has=1,weird!*pas$wo~d_too.(doesn't-it)@example.com",
    );
    assert_eq!(
        u.user.as_deref(),
        Some("1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*")
    );
    assert_eq!(
        u.password.as_deref(),
        Some("&it+has=1,weird!*pas$wo~d_too.(doesn't-it)")
    );
    assert_eq!(u.host, domain("example.com"));
    assert!(u.params.is_empty() && u.headers.is_empty());
}

#[test]
fn rfc4475_esc01_escaped_reserved_in_user() {
    let u = sip("sip:sips%3Auser%40example.com@example.net");
    assert_eq!(u.user.as_deref(), Some("sips:user@example.com"));
    assert_eq!(u.password, None);
    assert_eq!(u.host, domain("example.net"));
    assert_eq!(u.to_string(), "sip:sips%3Auser%40example.com@example.net");
}

#[test]
fn rfc4475_escnull_round_trips() {
    let u = sip("sip:null-%00-null@example.com");
    assert_eq!(u.user.as_deref(), Some("null-\0-null"));
    let s = u.to_string();
    assert_eq!(s, "sip:null-%00-null@example.com");
    assert_eq!(sip(&s), u);
}

#[test]
fn rfc4475_semiuri_escaped_at_in_user() {
    let u = sip("sip:user;par=u%40example.net@example.com");
    assert_eq!(u.user.as_deref(), Some("user;par=u@example.net"));
    assert_eq!(u.host, domain("example.com"));
    assert!(u.params.is_empty());
}

#[test]
fn rfc4475_escaped_user_and_transport() {
    let u = sip("sip:%61lice@atlanta.com;transport=TCP");
    assert_eq!(u.user.as_deref(), Some("alice"));
    assert_eq!(u.transport(), Some("TCP"));
    assert_eq!(u.to_string(), "sip:alice@atlanta.com;transport=TCP");
}

#[test]
fn rfc4475_escruri_header_in_uri_reescaped() {
    let u = sip("sip:user@example.com?Route=%3Csip:example.com%3E");
    assert_eq!(
        u.headers,
        vec![("Route".to_owned(), "<sip:example.com>".to_owned())]
    );
    assert_eq!(
        u.to_string(),
        "sip:user@example.com?Route=%3Csip:example.com%3E"
    );
}

#[test]
fn rfc4475_unknown_schemes_kept_as_text() {
    let u = uri("nobodyKnowsThisScheme:totallyopaquecontent");
    assert_eq!(
        u,
        Uri::Other(AbsoluteUri {
            scheme: "nobodyknowsthisscheme".to_owned(),
            rest: "totallyopaquecontent".to_owned()
        })
    );
    let u = uri("soap.beep://192.0.2.103:3002");
    assert_eq!(u.scheme(), "soap.beep");
    assert_eq!(u.to_string(), "soap.beep://192.0.2.103:3002");
    assert_eq!(uri("isbn:2983792873").scheme(), "isbn");
    assert_eq!(uri("urn:service:sos").to_string(), "urn:service:sos");
    assert!(uri("isbn:2983792873").as_sip().is_none());
    assert_eq!(err("http:"), UriErrorKind::Opaque);
    assert_eq!(err("http://a b"), UriErrorKind::Opaque);
    assert_eq!(err("http://a<b>"), UriErrorKind::Opaque);
    assert_eq!(err("http://%zz"), UriErrorKind::Escape);
}

#[test]
fn rfc4475_long_uri() {
    let user = "amazinglylongcallername".repeat(10);
    let param = format!(";unknownparam{}={}", "name".repeat(20), "value".repeat(30));
    let s = format!("sip:{user}@really.long.domain.name.not.ending.in.a.tld.example.com{param}");
    let u = sip(&s);
    assert_eq!(u.user.as_deref(), Some(user.as_str()));
    assert_eq!(u.params.len(), 1);
    assert_eq!(u.to_string(), s);
}

#[test]
fn rfc5118_ipv6_references() {
    // 4.1: plain reference.
    let u = sip("sip:[2001:db8::10]");
    assert_eq!(u.host, Host::V6(v6("2001:db8::10")));
    assert_eq!(u.port, None);
    // 4.2: not bracketed.
    assert_eq!(err("sip:2001:db8::10"), UriErrorKind::Ipv6NotBracketed);
    assert_eq!(err("sip:user@2001:db8::10"), UriErrorKind::Ipv6NotBracketed);
    // 4.3: all colons inside the brackets are the address's.
    let u = sip("sip:[2001:db8::10:5070]");
    assert_eq!(u.host, Host::V6(v6("2001:db8::10:5070")));
    assert_eq!(u.port, None);
    // 4.4: port after the bracket.
    let u = sip("sip:[2001:db8::10]:5070");
    assert_eq!(u.host, Host::V6(v6("2001:db8::10")));
    assert_eq!(u.port, Some(5070));
    // 4.9: IPv4-mapped address.
    let u = sip("sip:user@[::ffff:192.0.2.10]:19823");
    assert_eq!(
        u.host,
        Host::V6(Ipv4Addr::new(192, 0, 2, 10).to_ipv6_mapped())
    );
    assert_eq!(u.port, Some(19823));
    assert_eq!(u.to_string(), "sip:user@[::ffff:192.0.2.10]:19823");
    // 4.10: embedded IPv4 tail that once tripped the RFC 3261 ABNF.
    let u = sips_host("sips:[2001:db8::192.0.2.1]");
    assert_eq!(u, Host::V6(v6("2001:db8::c000:201")));
    // Upper-case hex and a long form are the same address.
    assert!(uri("sip:[2001:DB8:0:0:0:0:0:10]").equivalent(&uri("sip:[2001:db8::10]")));
    assert_eq!(uri("sip:[2001:DB8::10]").to_string(), "sip:[2001:db8::10]");
    // maddr can carry a reference: paramchar allows [ ] :.
    assert_eq!(
        sip("sip:h.example.com;maddr=[2001:db8::1]").maddr(),
        Some("[2001:db8::1]")
    );

    for bad in [
        "sip:[2001:db8::10",
        "sip:[2001:db8::10]x",
        "sip:[2001:db8::10]:",
        "sip:[]",
        "sip:[2001:db8::g]",
        "sip:[192.0.2.1]",
        "sip:[fe80::1%eth0]",
    ] {
        assert!(Uri::parse(bad).is_err(), "{bad} should fail");
    }
    assert_eq!(err("sip:[2001:db8::10]:"), UriErrorKind::Port);
    assert_eq!(err("sip:[2001:db8::10"), UriErrorKind::Ipv6);
}

fn sips_host(s: &str) -> Host {
    let u = sip(s);
    assert!(u.secure);
    u.host
}

#[test]
fn parse_host_port_for_via_sent_by() {
    assert_eq!(
        parse_host_port("[::1]:5070"),
        Ok((Host::V6(Ipv6Addr::LOCALHOST), Some(5070)))
    );
    assert_eq!(parse_host_port("host"), Ok((domain("host"), None)));
    assert_eq!(
        parse_host_port("1.2.3.4:5060"),
        Ok((Host::V4(Ipv4Addr::new(1, 2, 3, 4)), Some(5060)))
    );
    assert_eq!(
        parse_host_port("[2001:db8::9:1]:6050"),
        Ok((Host::V6(v6("2001:db8::9:1")), Some(6050)))
    );
    assert_eq!(
        parse_host_port("Proxy.Example.COM:0"),
        Ok((domain("proxy.example.com"), Some(0)))
    );
    assert_eq!(parse_host_port("h:65535").map(|r| r.1), Ok(Some(65535)));
    let kind = |s: &str| parse_host_port(s).map_err(|e| e.kind());
    assert_eq!(kind("h:65536"), Err(UriErrorKind::Port));
    assert_eq!(kind("h:99999999999999999999"), Err(UriErrorKind::Port));
    assert_eq!(kind("h:-1"), Err(UriErrorKind::Port));
    assert_eq!(kind("h:"), Err(UriErrorKind::Port));
    assert_eq!(kind(":5060"), Err(UriErrorKind::EmptyHost));
    assert_eq!(kind(""), Err(UriErrorKind::EmptyHost));
    assert_eq!(kind("2001:db8::9:1"), Err(UriErrorKind::Ipv6NotBracketed));
    assert_eq!(kind("a:b:c"), Err(UriErrorKind::Port));
    assert_eq!(kind("fe80::1"), Err(UriErrorKind::Ipv6NotBracketed));
    assert_eq!(kind("a b"), Err(UriErrorKind::Host));
    assert_eq!(kind("a:5060 "), Err(UriErrorKind::Port));
    assert_eq!(kind("[::1]:5060;x"), Err(UriErrorKind::Port));
}

#[test]
fn host_parse_and_display() {
    assert_eq!(Host::parse("Example.COM"), Ok(domain("example.com")));
    assert_eq!(Host::parse("example.com."), Ok(domain("example.com.")));
    assert_eq!(
        Host::parse("a-b.c-d.example"),
        Ok(domain("a-b.c-d.example"))
    );
    assert_eq!(Host::parse("1host.example"), Ok(domain("1host.example")));
    assert_eq!(
        Host::parse("192.0.2.1"),
        Ok(Host::V4(Ipv4Addr::new(192, 0, 2, 1)))
    );
    // Leading zeros are legal in the RFC 3261 IPv4 grammar.
    assert_eq!(
        Host::parse("010.000.2.1"),
        Ok(Host::V4(Ipv4Addr::new(10, 0, 2, 1)))
    );
    assert_eq!(
        Host::parse("[2001:db8::1]"),
        Ok(Host::V6(v6("2001:db8::1")))
    );
    assert_eq!(
        Host::parse("2001:db8::1").map_err(|e| e.kind()),
        Err(UriErrorKind::Ipv6NotBracketed)
    );
    for bad in [
        "",
        ".",
        "a..b",
        ".a",
        "-a.com",
        "a-.com",
        "a.-b.com",
        "example.123",
        "1.2.3",
        "1.2.3.4.5",
        "256.1.1.1",
        "1.2.3.1000",
        "a_b.com",
        "a b",
        "host:5060",
        "[::1",
        "ex%41mple.com",
        "é.com",
        "a.com..",
    ] {
        assert!(Host::parse(bad).is_err(), "{bad:?} should fail");
    }
    assert_eq!(Host::V6(v6("::1")).to_string(), "[::1]");
    for a in ["0.0.0.0", "255.255.255.255", "100.10.1.0", "9.99.199.200"] {
        let ip: Ipv4Addr = a.parse().unwrap_or(Ipv4Addr::UNSPECIFIED);
        assert_eq!(Host::V4(ip).to_string(), a);
    }
    for port in [0u16, 9, 10, 5060, 65535] {
        let mut u = SipUri::new(domain("h"));
        u.port = Some(port);
        assert_eq!(u.to_string(), format!("sip:h:{port}"));
    }
    assert_eq!("[::1]".parse::<Host>(), Ok(Host::V6(Ipv6Addr::LOCALHOST)));
    assert!(domain("A.com").equivalent(&domain("a.COM")));
    assert!(!domain("192.0.2.1").equivalent(&Host::V4(Ipv4Addr::new(192, 0, 2, 1))));
}

#[test]
fn invalid_sip_uris() {
    let cases: &[(&str, UriErrorKind)] = &[
        ("", UriErrorKind::Empty),
        ("sip", UriErrorKind::Scheme),
        (":alice@host", UriErrorKind::Scheme),
        ("1sip:alice@host", UriErrorKind::Scheme),
        ("<sip:alice@host>", UriErrorKind::Scheme),
        (" sip:alice@host", UriErrorKind::Scheme),
        ("s p:alice@host", UriErrorKind::Scheme),
        ("sip:", UriErrorKind::EmptyHost),
        ("sip:alice@", UriErrorKind::EmptyHost),
        ("sip:alice@;transport=udp", UriErrorKind::EmptyHost),
        ("sip:@host", UriErrorKind::User),
        ("sip::pw@host", UriErrorKind::User),
        ("sip:al ice@host", UriErrorKind::User),
        ("sip:al<ice@host", UriErrorKind::User),
        ("sip:alice@host name", UriErrorKind::Host),
        ("sip:alice@host ", UriErrorKind::Host),
        ("sip:alice@host>", UriErrorKind::Host),
        ("sip:alice@host;transport=udp ", UriErrorKind::Param),
        ("sip:alice@host; lr", UriErrorKind::Param),
        ("sip:%G1@host", UriErrorKind::Escape),
        ("sip:%4@host", UriErrorKind::Escape),
        ("sip:alice%@host", UriErrorKind::Escape),
        ("sip:alice@host;a=%4", UriErrorKind::Escape),
        ("sip:alice@host?a=b%", UriErrorKind::Escape),
        ("sip:%FF@host", UriErrorKind::Utf8),
        ("sip:a:b:c@host", UriErrorKind::Password),
        ("sip:a:p w@host", UriErrorKind::Password),
        ("sip:alice@host:", UriErrorKind::Port),
        ("sip:alice@host:65536", UriErrorKind::Port),
        ("sip:alice@host:5o60", UriErrorKind::Port),
        ("sip:alice@host:+5060", UriErrorKind::Port),
        ("sip:alice@host;", UriErrorKind::Param),
        ("sip:alice@host;;lr", UriErrorKind::Param),
        ("sip:alice@host;=x", UriErrorKind::Param),
        ("sip:alice@host;a=b=c", UriErrorKind::Param),
        ("sip:alice@host;a=<b>", UriErrorKind::Param),
        ("sip:alice@host?", UriErrorKind::Header),
        ("sip:alice@host?subject", UriErrorKind::Header),
        ("sip:alice@host?=x", UriErrorKind::Header),
        ("sip:alice@host?a=b&", UriErrorKind::Header),
        ("sip:alice@host?a=b=c", UriErrorKind::Header),
        ("sip:alice@ex..com", UriErrorKind::Host),
        ("sip:alice@1.2.3", UriErrorKind::Host),
        ("sip:alice@256.0.0.1", UriErrorKind::Host),
        ("sip:alice@exa_mple.com", UriErrorKind::Host),
        ("sip:ali\u{e9}ce@host", UriErrorKind::User),
        ("sip:alice@h\u{e9}st", UriErrorKind::Host),
        ("sip:alice@host\r\n", UriErrorKind::Host),
    ];
    for &(s, kind) in cases {
        assert_eq!(err(s), kind, "{s:?}");
    }
}

#[test]
fn error_reason_and_display() {
    let e = Uri::parse("sip:alice@host:70000").err();
    assert_eq!(
        e.as_ref().map(UriError::reason),
        Some("invalid port in URI")
    );
    assert_eq!(
        e.map(|e| e.to_string()).as_deref(),
        Some("invalid port in URI")
    );
    assert_eq!(
        Uri::parse("sip:2001:db8::1").map_err(|e| e.to_string()),
        Err("IPv6 address in URI needs brackets".to_owned())
    );
    assert_eq!(
        SipUri::parse("tel:+1").map_err(|e| e.kind()),
        Err(UriErrorKind::NotSip)
    );
    assert_eq!(
        TelUri::parse("sip:a@b").map_err(|e| e.kind()),
        Err(UriErrorKind::NotTel)
    );
}

#[test]
fn params_and_headers_with_escapes() {
    let u = sip("sip:h.example.com;na%6De=v%20al;lr;Flag=?X%2DY=1%262&z=");
    assert_eq!(
        u.params,
        params(&[("name", Some("v al")), ("lr", None), ("Flag", Some(""))])
    );
    assert_eq!(
        u.headers,
        vec![
            ("X-Y".to_owned(), "1&2".to_owned()),
            ("z".to_owned(), String::new())
        ]
    );
    assert_eq!(
        u.to_string(),
        "sip:h.example.com;name=v%20al;lr;Flag=?X-Y=1%262&z="
    );
}

#[test]
fn param_accessors_and_mutation() {
    let mut u = sip("sips:bob@biloxi.com;TRANSPORT=tls;Maddr=239.255.255.1;ttl=15;lr=on;user=ip");
    assert_eq!(u.transport(), Some("tls"));
    assert_eq!(u.maddr(), Some("239.255.255.1"));
    assert_eq!(u.ttl(), Some(15));
    assert!(u.lr());
    assert_eq!(u.user_param(), Some("ip"));
    assert_eq!(u.default_port(), 5061);
    assert_eq!(u.port_or_default(), 5061);

    u.set_param("transport", Some("tcp"));
    assert_eq!(u.transport(), Some("tcp"));
    assert_eq!(u.params.len(), 5);
    u.set_param("ob", None);
    assert_eq!(u.param("ob"), Some(None));
    u.params.push(("lr".to_owned(), None));
    u.set_param("LR", None);
    assert_eq!(
        u.params
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case("lr"))
            .count(),
        1
    );
    u.remove_param("lr");
    assert!(!u.lr());
    u.remove_param("maddr");
    assert_eq!(u.maddr(), None);
    assert_eq!(
        u.to_string(),
        "sips:bob@biloxi.com;TRANSPORT=tcp;ttl=15;user=ip;ob"
    );

    let mut n = SipUri::new(Host::V4(Ipv4Addr::new(192, 0, 2, 1)));
    assert_eq!(n.to_string(), "sip:192.0.2.1");
    assert_eq!(n.port_or_default(), 5060);
    n.user = Some("a b@c".to_owned());
    n.password = Some("p:w".to_owned());
    n.port = Some(5070);
    n.set_param("x", Some("a;b"));
    n.headers.push(("h".to_owned(), "v&w".to_owned()));
    let s = n.to_string();
    assert_eq!(s, "sip:a%20b%40c:p%3Aw@192.0.2.1:5070;x=a%3Bb?h=v%26w");
    assert_eq!(sip(&s), n);
}

#[test]
fn rfc3261_section_19_1_4_equivalent_pairs() {
    let equal = [
        (
            "sip:%61lice@atlanta.com;transport=TCP",
            "sip:alice@AtLanTa.CoM;Transport=tcp",
        ),
        ("sip:carol@chicago.com", "sip:carol@chicago.com;newparam=5"),
        ("sip:carol@chicago.com", "sip:carol@chicago.com;security=on"),
        (
            "sip:carol@chicago.com;newparam=5",
            "sip:carol@chicago.com;security=on",
        ),
        (
            "sip:biloxi.com;transport=tcp;method=REGISTER?to=sip:bob%40biloxi.com",
            "sip:biloxi.com;method=REGISTER;transport=tcp?to=sip:bob%40biloxi.com",
        ),
        (
            "sip:alice@atlanta.com?subject=project%20x&priority=urgent",
            "sip:alice@atlanta.com?priority=urgent&subject=project%20x",
        ),
    ];
    for (a, b) in equal {
        assert!(uri(a).equivalent(&uri(b)), "{a} == {b}");
        assert!(uri(b).equivalent(&uri(a)), "{b} == {a}");
    }
}

#[test]
fn rfc3261_section_19_1_4_non_equivalent_pairs() {
    let different = [
        // Different usernames (userinfo is case-sensitive).
        (
            "SIP:ALICE@AtLanTa.CoM;Transport=udp",
            "sip:alice@AtLanTa.CoM;Transport=UDP",
        ),
        // Can resolve to different ports.
        ("sip:bob@biloxi.com", "sip:bob@biloxi.com:5060"),
        // Can resolve to different transports.
        ("sip:bob@biloxi.com", "sip:bob@biloxi.com;transport=udp"),
        // Different port and transport.
        (
            "sip:bob@biloxi.com",
            "sip:bob@biloxi.com:6000;transport=tcp",
        ),
        // Different header component.
        (
            "sip:carol@chicago.com",
            "sip:carol@chicago.com?Subject=next%20meeting",
        ),
        // A name never equals the address it resolves to.
        ("sip:bob@phone21.boxesbybob.com", "sip:bob@192.0.2.4"),
        // The intransitivity example.
        (
            "sip:carol@chicago.com;security=on",
            "sip:carol@chicago.com;security=off",
        ),
    ];
    for (a, b) in different {
        assert!(!uri(a).equivalent(&uri(b)), "{a} != {b}");
        assert!(!uri(b).equivalent(&uri(a)), "{b} != {a}");
    }
}

#[test]
fn equivalence_details() {
    let eq = |a: &str, b: &str| uri(a).equivalent(&uri(b));
    assert!(!eq("sip:alice@atlanta.com", "sips:alice@atlanta.com"));
    assert!(!eq("sip:atlanta.com", "sip:alice@atlanta.com"));
    assert!(!eq("sip:alice:a@atlanta.com", "sip:alice:A@atlanta.com"));
    assert!(!eq("sip:alice:@atlanta.com", "sip:alice@atlanta.com"));
    assert!(eq(
        "sip:al%69ce:p%77@atlanta.com",
        "sip:alice:pw@atlanta.com"
    ));
    for p in [
        "user=phone",
        "ttl=1",
        "method=INVITE",
        "maddr=1.2.3.4",
        "transport=udp",
    ] {
        assert!(!eq("sip:h.com", &format!("sip:h.com;{p}")), "{p}");
        assert!(
            eq(&format!("sip:h.com;{p}"), &format!("sip:h.com;{p}")),
            "{p}"
        );
    }
    assert!(eq("sip:h.com;maddr=H.COM", "sip:h.com;MADDR=h.com"));
    assert!(!eq("sip:h.com;lr", "sip:h.com;lr=on"));
    assert!(eq("sip:h.com;lr", "sip:h.com"));
    assert!(!eq("sip:h.com?a=1", "sip:h.com?a=1&a=1"));
    assert!(!eq("sip:h.com?a=1&a=1&b=2", "sip:h.com?a=1&b=2&b=2"));
    assert!(eq("sip:h.com?A=1&b=%32", "sip:h.com?b=2&a=1"));
    assert!(!eq("sip:h.com?a=x", "sip:h.com?a=X"));
    assert!(eq("sip:[::1]", "sip:[0:0::1]"));
    assert!(!eq("sip:alice@h.com", "tel:+1"));
    assert!(eq("urn:x:y", "URN:x:y"));
    assert!(!eq("urn:x:y", "urn:x:Y"));
}

#[test]
fn tel_uris() {
    let t = tel("tel:+1-201-555-0123");
    assert!(t.global);
    assert_eq!(t.number, "1-201-555-0123");
    assert_eq!(t.digits(), "12015550123");
    assert!(t.params.is_empty());
    assert_eq!(t.to_string(), "tel:+1-201-555-0123");

    let t = tel("tel:7042;phone-context=example.com");
    assert!(!t.global);
    assert_eq!(t.number, "7042");
    assert!(matches!(t.digits(), Cow::Borrowed("7042")));
    assert_eq!(t.phone_context(), Some("example.com"));

    let t = tel("tel:863-1234;phone-context=+1-914-555");
    assert_eq!(t.digits(), "8631234");
    assert_eq!(t.phone_context(), Some("+1-914-555"));

    let t = tel("tel:+1-201-555-0123;ext=1234;isub=%41b");
    assert_eq!(
        t.params,
        params(&[("ext", Some("1234")), ("isub", Some("Ab"))])
    );

    let t = tel("tel:*21%23;phone-context=example.com");
    assert_eq!(t.number, "*21#");
    assert_eq!(t.to_string(), "tel:*21%23;phone-context=example.com");
    assert_eq!(tel("tel:*21#;phone-context=x.com").number, "*21#");
    // Local numbers may hold hex digits; the missing phone-context is
    // tolerated (see TelUri).
    assert_eq!(tel("tel:AbC(1)").number, "AbC(1)");
    assert_eq!(tel("tel:911").number, "911");

    for bad in [
        "tel:",
        "tel:+",
        "tel:+-",
        "tel:--",
        "tel:+12a",
        "tel:+1 2",
        "tel:12?x",
        "tel:1;",
        "tel:1;=a",
        "tel:1;a=b=c",
        "tel:%2B1",
        "tel:1%G0",
        "tel:1@host",
        "tel:+1;a=<b>",
    ] {
        assert!(Uri::parse(bad).is_err(), "{bad:?} should fail");
    }
    assert_eq!(err("tel:+12a"), UriErrorKind::TelNumber);
    assert_eq!(err("tel:1;a b"), UriErrorKind::Param);
}

#[test]
fn tel_equivalence_rfc3966() {
    let eq = |a: &str, b: &str| uri(a).equivalent(&uri(b));
    assert!(eq("tel:+1-201-555-0123", "tel:+1(201)5550123"));
    assert!(eq("tel:+1.201.555.0123", "tel:+12015550123"));
    assert!(!eq("tel:+12015550123", "tel:12015550123"));
    assert!(!eq("tel:+12015550123", "tel:+12015550124"));
    assert!(!eq("tel:+1-201-555-0123", "tel:+1-201-555-0123;ext=1234"));
    assert!(eq(
        "tel:7042;phone-context=Example.COM",
        "tel:7042;PHONE-CONTEXT=example.com"
    ));
    assert!(eq(
        "tel:863-1234;phone-context=+1-914-555",
        "tel:8631234;phone-context=+1914555"
    ));
    assert!(!eq(
        "tel:863-1234;phone-context=+1-914-555",
        "tel:863-1234;phone-context=+1-914-556"
    ));
    assert!(eq(
        "tel:abc;phone-context=x.com",
        "tel:ABC;phone-context=x.com"
    ));
    assert!(eq("tel:+1234;ext=1;isub=2", "tel:+1234;isub=2;ext=1"));
}

#[test]
fn escape_and_unescape_api() {
    assert!(matches!(
        escape("alice", is_user_char),
        Cow::Borrowed("alice")
    ));
    assert_eq!(escape("a b@c", is_user_char), "a%20b%40c");
    // '%' and non-ASCII are escaped whatever the predicate says.
    assert_eq!(escape("100%é", |_| true), "100%25%C3%A9");
    assert_eq!(escape("\0", is_user_char), "%00");
    assert_eq!(escape("x=y;z", is_param_char), "x%3Dy%3Bz");
    assert_eq!(escape("a:b&c", is_password_char), "a%3Ab&c");
    assert_eq!(escape("?:&", is_header_char), "?:%26");
    assert!(is_unreserved(b'~') && !is_unreserved(b'&'));

    assert!(matches!(unescape("plain"), Ok(Cow::Borrowed("plain"))));
    assert_eq!(unescape("%61%6c%69%63%65").as_deref(), Ok("alice"));
    assert_eq!(unescape("%C3%A9").as_deref(), Ok("é"));
    assert_eq!(unescape("a%00b").as_deref(), Ok("a\0b"));
    assert_eq!(
        unescape("%G1").map_err(|e| e.kind()),
        Err(UriErrorKind::Escape)
    );
    assert_eq!(
        unescape("%4").map_err(|e| e.kind()),
        Err(UriErrorKind::Escape)
    );
    assert_eq!(
        unescape("%").map_err(|e| e.kind()),
        Err(UriErrorKind::Escape)
    );
    assert_eq!(
        unescape("%C3").map_err(|e| e.kind()),
        Err(UriErrorKind::Utf8)
    );
    for s in ["a b", "x%y", "é/ü", "\0\u{1}", "%%%"] {
        assert_eq!(unescape(&escape(s, is_unreserved)).as_deref(), Ok(s));
    }
}

/// URIs whose canonical form must parse back to the same value.
const ROUND_TRIP: &[&str] = &[
    "sip:alice@192.0.2.10:5060;transport=udp",
    "sip:alice@atlanta.com",
    "sip:alice:secretword@atlanta.com;transport=tcp",
    "sips:alice@atlanta.com?subject=project%20x&priority=urgent",
    "sip:+1-212-555-1212:1234@gateway.com;user=phone",
    "sip:atlanta.com;method=REGISTER?to=alice%40atlanta.com",
    "sip:alice;day=tuesday@atlanta.com",
    "SIP:%61lice@AtLanTa.CoM;Transport=TCP",
    "sip:1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*:&it+has=1,weird!*pas$wo~d_too.(doesn't-it)@example.com",
    "sip:sips%3Auser%40example.com@example.net",
    "sip:null-%00-null@example.com",
    "sip:user;par=u%40example.net@example.com",
    "sip:user@example.com?Route=%3Csip:example.com%3E",
    "sip:[2001:db8::10]:5070",
    "sip:[2001:db8::10:5070]",
    "sips:user@[::ffff:192.0.2.10]:19823;transport=tls",
    "sip:h.example.com.;lr;maddr=[::1];x=%5B%5D",
    "sip:010.0.0.1:00080",
    "sip:alice:@h.com",
    "sip:%E2%82%AC@h.com;%E2%82%AC=%E2%82%AC?%E2%82%AC=%E2%82%AC",
    "sip:a%3Bb@h.com;p=%3F?h=%3D",
    "sip:h.com;a=",
    "tel:+1-201-555-0123;ext=1234",
    "tel:*21%23;phone-context=example.com",
    "tel:7042;phone-context=example.com",
    "tel:+1;x=%20",
    "urn:service:sos",
    "HTTP://example.com/a%20b?c#d",
];

#[test]
fn display_round_trips() {
    for s in ROUND_TRIP {
        let u = uri(s);
        let out = u.to_string();
        let again = uri(&out);
        assert_eq!(again, u, "{s} -> {out}");
        assert_eq!(again.to_string(), out, "canonical form is stable for {s}");
        assert!(u.equivalent(&again), "{s}");
        assert_eq!(out.parse::<Uri>().as_ref(), Ok(&u));
    }
}

/// Deterministic xorshift64, so a failure reproduces.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// Whatever parses must display to something that parses back equal.
/// Returns whether `s` parsed, so the test can check it reached valid input.
fn check_no_panic(s: &str) -> bool {
    let _ = parse_host_port(s);
    let _ = Host::parse(s);
    let _ = unescape(s);
    let Ok(u) = Uri::parse(s) else {
        return false;
    };
    let out = u.to_string();
    assert_eq!(Uri::parse(&out).as_ref(), Ok(&u), "{s:?} -> {out:?}");
    assert!(u.equivalent(&u), "{s:?}");
    true
}

#[test]
fn garbage_never_panics() {
    const ALPHABET: &[&str] = &[
        "sip:",
        "sips:",
        "tel:",
        "x:",
        "a",
        "Z",
        "0",
        "9",
        "5060",
        "@",
        ":",
        ";",
        "?",
        "&",
        "=",
        "%",
        "%4",
        "%41",
        "%00",
        "%FF",
        "%C3%A9",
        "[",
        "]",
        "[::1]",
        ".",
        "-",
        "+",
        "#",
        "*",
        "/",
        " ",
        "<",
        ">",
        "\"",
        "\0",
        "\r\n",
        "é",
        "€",
        "lr",
        "transport=",
        "::",
        "192.0.2.1",
        "(",
    ];
    let mut rng = XorShift(0x9E37_79B9_7F4A_7C15);
    let mut s = String::new();
    let mut parsed = 0;
    for _ in 0..20_000 {
        s.clear();
        // Mostly start with a scheme so the string reaches the body parsers.
        if rng.below(4) != 0 {
            s.push_str(["sip:", "sips:", "tel:", "x:"][rng.below(4)]);
        }
        for _ in 0..rng.below(12) {
            s.push_str(ALPHABET[rng.below(ALPHABET.len())]);
        }
        parsed += usize::from(check_no_panic(&s));
    }
    let random_ok = parsed;
    // Mutations of valid URIs reach deeper into the grammar.
    let bytes: &[u8] = b"@:;?&=%[]. -+#*/<>\0\xff0aZ";
    for _ in 0..20_000 {
        let base = ROUND_TRIP[rng.below(ROUND_TRIP.len())];
        let mut b = base.as_bytes().to_vec();
        for _ in 0..1 + rng.below(3) {
            let at = rng.below(b.len() + 1);
            match rng.below(3) {
                0 => b.insert(at, bytes[rng.below(bytes.len())]),
                1 if at < b.len() => {
                    b.remove(at);
                }
                _ if at < b.len() => b[at] = bytes[rng.below(bytes.len())],
                _ => {}
            }
        }
        parsed += usize::from(check_no_panic(&String::from_utf8_lossy(&b)));
    }
    eprintln!("parsed: {random_ok} random, {} mutated", parsed - random_ok);
    assert!(random_ok > 500 && parsed - random_ok > 4_000);
}

/// Rough parse cost; meaningful only in an optimised build:
/// `cargo test -p sip --release -- --ignored parse_speed --nocapture`.
#[test]
#[ignore]
fn parse_speed() {
    let s = std::hint::black_box("sip:alice@192.0.2.10:5060;transport=udp");
    let n = 1_000_000u32;
    let start = std::time::Instant::now();
    let mut ok = 0usize;
    for _ in 0..n {
        ok += usize::from(Uri::parse(std::hint::black_box(s)).is_ok());
    }
    let per = start.elapsed() / n;
    println!("Uri::parse: {per:?} per call");
    assert_eq!(ok, n as usize);
}

#[test]
fn borrowed_view_agrees_with_the_owned_form() {
    for s in [
        "sip:alice@atlanta.example.com",
        "sips:Al%69ce:pw%21@[2001:db8::1]:5061;transport=tcp;lr;x=%3Bsemi?Subject=hi%20there&h=",
        "sip:biloxi.example.com;maddr=239.255.255.1;ttl=15",
        "tel:+1-201-555-0123;ext=1%32",
        "tel:7042;phone-context=example.com",
        "urn:service:sos",
    ] {
        let r = UriRef::parse(s).unwrap_or_else(|e| panic!("{s}: {e}"));
        let u = uri(s);
        assert_eq!(r.to_uri(), u, "{s}");
        assert_eq!(r.scheme(), u.scheme(), "{s}");
        if let (Some(r), Some(u)) = (r.as_sip(), u.as_sip()) {
            assert_eq!(r.secure(), u.secure);
            assert_eq!(r.user().as_deref(), u.user.as_deref());
            assert_eq!(r.password().as_deref(), u.password.as_deref());
            assert_eq!(r.host().to_host(), u.host);
            assert_eq!(r.port(), u.port);
            assert_eq!(r.lr(), u.lr());
            assert_eq!(r.has_headers(), !u.headers.is_empty());
            for (n, v) in &u.params {
                assert_eq!(r.param(n).map(|v| v.map(Cow::into_owned)), Some(v.clone()));
            }
        }
        if let (Some(r), Some(u)) = (r.as_tel(), u.as_tel()) {
            assert_eq!(r.number(), u.number);
            assert_eq!(r.global(), u.global);
        }
    }
    // Every error the owned parser reports, the borrowed one reports too.
    for s in [
        "",
        "sip:",
        "sip:a@",
        "sip:%zz@h",
        "sip:%C3%28@h",
        "sip:h;=x",
        "tel:+12a",
        "x:",
    ] {
        assert_eq!(UriRef::parse(s).map(|r| r.to_uri()), Uri::parse(s), "{s}");
        assert!(UriRef::parse(s).is_err(), "{s}");
    }
}
