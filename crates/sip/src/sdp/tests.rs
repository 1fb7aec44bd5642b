//! Tests on RFC examples and on offers as real softphones send them.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::*;

/// Samples are written with LF for readability; the wire uses CRLF.
fn crlf(text: &str) -> String {
    text.replace('\n', "\r\n")
}

fn parse(text: &str) -> SessionDescription {
    match SessionDescription::parse(&crlf(text)) {
        Ok(sdp) => sdp,
        Err(e) => panic!("sample failed to parse: {e}"),
    }
}

fn ip(text: &str) -> IpAddr {
    text.parse().unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED))
}

fn error_of(text: &str) -> SdpError {
    match SessionDescription::parse(text) {
        Ok(sdp) => panic!("expected an error, parsed {sdp:?}"),
        Err(e) => e,
    }
}

const RFC4566_EXAMPLE: &str = "\
v=0
o=jdoe 2890844526 2890842807 IN IP4 10.47.16.5
s=SDP Seminar
i=A Seminar on the session description protocol
u=http://www.example.com/seminars/sdp.pdf
e=j.doe@example.com (Jane Doe)
c=IN IP4 224.2.17.12/127
t=2873397496 2873404696
a=recvonly
m=audio 49170 RTP/AVP 0
m=video 51372 RTP/AVP 99
a=rtpmap:99 h263-1998/90000
";

const RFC4317_2_1_OFFER: &str = "\
v=0
o=alice 2890844526 2890844526 IN IP4 host.atlanta.example.com
s=
c=IN IP4 host.atlanta.example.com
t=0 0
m=audio 49170 RTP/AVP 0 8 97
a=rtpmap:0 PCMU/8000
a=rtpmap:8 PCMA/8000
a=rtpmap:97 iLBC/8000
m=video 51372 RTP/AVP 31 32
a=rtpmap:31 H261/90000
a=rtpmap:32 MPV/90000
";

const RFC4317_2_1_ANSWER: &str = "\
v=0
o=bob 2808844564 2808844564 IN IP4 host.biloxi.example.com
s=
c=IN IP4 host.biloxi.example.com
t=0 0
m=audio 49174 RTP/AVP 0
a=rtpmap:0 PCMU/8000
m=video 49170 RTP/AVP 32
a=rtpmap:32 MPV/90000
";

const RFC4317_2_4_OFFER: &str = "\
v=0
o=alice 2890844526 2890844526 IN IP4 host.atlanta.example.com
s=
c=IN IP4 host.atlanta.example.com
t=0 0
m=audio 49170 RTP/AVP 0 97
a=rtpmap:0 PCMU/8000
a=rtpmap:97 iLBC/8000
m=audio 49172 RTP/AVP 98
a=rtpmap:98 telephone-event/8000
a=sendonly
";

const RFC4317_2_4_ANSWER: &str = "\
v=0
o=bob 2808844564 2808844564 IN IP4 host.biloxi.example.com
s=
c=IN IP4 host.biloxi.example.com
t=0 0
m=audio 49172 RTP/AVP 97
a=rtpmap:97 iLBC/8000
m=audio 49174 RTP/AVP 98
a=rtpmap:98 telephone-event/8000
a=recvonly
";

/// RFC 4317 §3.1 style: Bob, in a call with Alice, puts her on hold.
const RFC4317_HOLD_OFFER: &str = "\
v=0
o=bob 2808844564 2808844565 IN IP4 host.biloxi.example.com
s=
c=IN IP4 host.biloxi.example.com
t=0 0
m=audio 49172 RTP/AVP 97
a=rtpmap:97 iLBC/8000
a=sendonly
";

/// baresip-style: PCMU, PCMA, telephone-event.
const BARESIP_OFFER: &str = "\
v=0
o=- 1185207616 3386442218 IN IP4 192.168.1.20
s=-
c=IN IP4 192.168.1.20
t=0 0
m=audio 10346 RTP/AVP 0 8 101
b=AS:64
a=rtpmap:0 PCMU/8000
a=rtpmap:8 PCMA/8000
a=rtpmap:101 telephone-event/8000
a=fmtp:101 0-15
a=sendrecv
a=label:1
a=rtcp-rsize
a=ssrc:1402227337 cname:a1b2c3d4-0000-4000-8000-b2c3d4e5f601
a=ptime:20
";

/// Linphone-ish: opus, speex, static PCMU/PCMA/G729 (G729 without rtpmap),
/// one telephone-event per clock rate, session-level extensions.
const LINPHONE_OFFER: &str = "\
v=0
o=alice 3211 1234 IN IP4 192.168.0.42
s=Talk
c=IN IP4 192.168.0.42
t=0 0
a=rtcp-xr:rcvr-rtt=all:10000 stat-summary=loss,dup,jitt,TTL voip-metrics
a=record:off
m=audio 7078 RTP/AVP 96 97 98 0 8 18 101 99 100
a=rtpmap:96 opus/48000/2
a=fmtp:96 useinbandfec=1
a=rtpmap:97 speex/16000
a=fmtp:97 vbr=on
a=rtpmap:98 speex/8000
a=fmtp:98 vbr=on
a=fmtp:18 annexb=yes
a=rtpmap:101 telephone-event/48000
a=rtpmap:99 telephone-event/16000
a=rtpmap:100 telephone-event/8000
a=rtcp-fb:* trr-int 1000
a=rtcp-fb:* ccm tmmbr
";

/// Chrome WebRTC: DTLS-SRTP, ICE, BUNDLE, rtcp-mux, RED, two events.
const CHROME_OFFER: &str = "\
v=0
o=- 4611731400430051336 2 IN IP4 127.0.0.1
s=-
t=0 0
a=group:BUNDLE 0
a=extmap-allow-mixed
a=msid-semantic: WMS stream1
m=audio 54400 UDP/TLS/RTP/SAVPF 111 63 9 0 8 110 126
c=IN IP4 203.0.113.7
a=rtcp:9 IN IP4 0.0.0.0
a=candidate:1467250027 1 udp 2122260223 192.168.0.196 54400 typ host generation 0 network-id 1
a=candidate:435653019 1 udp 1686052607 203.0.113.7 54400 typ srflx raddr 192.168.0.196 rport 54400 generation 0 network-id 1
a=ice-ufrag:Oyef
a=ice-pwd:7XvBhJvb0dcxkGJhGZ2dKQ8y
a=ice-options:trickle
a=fingerprint:sha-256 49:66:12:17:0D:1C:91:AE:57:4C:C6:36:DD:D5:97:D2:7D:62:C9:9A:7F:B9:A3:F1:EF:11:43:1E:8F:E6:5C:41
a=setup:actpass
a=mid:0
a=extmap:1 urn:ietf:params:rtp-hdrext:ssrc-audio-level
a=sendrecv
a=msid:stream1 track1
a=rtcp-mux
a=rtpmap:111 opus/48000/2
a=rtcp-fb:111 transport-cc
a=fmtp:111 minptime=10;useinbandfec=1
a=rtpmap:63 red/48000/2
a=fmtp:63 111/111
a=rtpmap:9 G722/8000
a=rtpmap:0 PCMU/8000
a=rtpmap:8 PCMA/8000
a=rtpmap:110 telephone-event/48000
a=rtpmap:126 telephone-event/8000
a=ssrc:3570614608 cname:4TOk42mSjXCkVIa6
a=ssrc:3570614608 msid:stream1 track1
";

/// A desk phone offering wideband first: G722, opus, PCMU, events.
const G722_OPUS_OFFER: &str = "\
v=0
o=user 8000 8000 IN IP4 198.51.100.10
s=call
c=IN IP4 198.51.100.10
t=0 0
m=audio 16384 RTP/AVP 9 96 0 101
a=rtpmap:9 G722/8000
a=rtpmap:96 opus/48000/2
a=fmtp:96 maxplaybackrate=16000;sprop-maxcapturerate=16000;useinbandfec=1
a=rtpmap:0 PCMU/8000
a=rtpmap:101 telephone-event/8000
a=fmtp:101 0-16
a=ptime:20
a=maxptime:40
a=sendrecv
";

/// IPv6, RFC 3605 rtcp with an address, audio plus a T.38 image stream.
const IPV6_OFFER: &str = "\
v=0
o=- 20518 0 IN IP6 2001:db8::10
s=-
c=IN IP6 2001:db8::10
t=0 0
m=audio 49230 RTP/AVP 8 0
a=rtcp:53020 IN IP6 2001:db8::11
a=rtpmap:8 PCMA/8000
a=rtpmap:0 PCMU/8000
m=image 49232 udptl t38
a=T38FaxVersion:0
a=T38FaxRateManagement:transferredTCF
";

const ALL_SAMPLES: [&str; 12] = [
    RFC4566_EXAMPLE,
    RFC4317_2_1_OFFER,
    RFC4317_2_1_ANSWER,
    RFC4317_2_4_OFFER,
    RFC4317_2_4_ANSWER,
    RFC4317_HOLD_OFFER,
    BARESIP_OFFER,
    LINPHONE_OFFER,
    CHROME_OFFER,
    G722_OPUS_OFFER,
    IPV6_OFFER,
    "v=0\no=- 1 1 IN IP4 10.0.0.1\ns=-\nt=0 0\n",
];

fn pcmu_pcma_caps() -> Capabilities {
    Capabilities::audio(vec![
        LocalCodec::new("PCMA", 8000, 1),
        LocalCodec::new("PCMU", 8000, 1),
    ])
}

fn local(ports: &[u16]) -> LocalEndpoint {
    LocalEndpoint::new(ip("192.0.2.1"), ports.to_vec())
}

fn answer_to(offer: &SessionDescription, caps: &Capabilities) -> SessionDescription {
    match answer(offer, caps, &local(&[40000, 40002, 40004])) {
        Ok(sdp) => sdp,
        Err(e) => panic!("answer failed: {e}"),
    }
}

fn formats(media: &MediaDescription) -> Vec<&str> {
    media.formats.iter().map(String::as_str).collect()
}

// ------------------------------------------------------------ parsing

#[test]
fn rfc4566_example_fields() {
    let sdp = parse(RFC4566_EXAMPLE);
    assert_eq!(sdp.origin.username, "jdoe");
    assert_eq!(sdp.origin.session_id, "2890844526");
    assert_eq!(sdp.origin.session_version, 2890842807);
    assert_eq!(sdp.origin.addr_type, AddrType::Ip4);
    assert_eq!(sdp.origin.address, "10.47.16.5");
    assert_eq!(sdp.session_name, "SDP Seminar");
    assert_eq!(
        sdp.information.as_deref(),
        Some("A Seminar on the session description protocol")
    );
    assert_eq!(
        sdp.uri.as_deref(),
        Some("http://www.example.com/seminars/sdp.pdf")
    );
    assert_eq!(sdp.emails, vec!["j.doe@example.com (Jane Doe)"]);
    let c = sdp
        .connection
        .as_ref()
        .map(|c| (c.address.as_str(), c.ttl, c.count));
    assert_eq!(c, Some(("224.2.17.12", Some(127), None)));
    assert_eq!(sdp.timings.len(), 1);
    assert_eq!(sdp.timings[0].start, 2873397496);
    assert_eq!(sdp.timings[0].stop, 2873404696);
    assert_eq!(sdp.direction(), Some(Direction::RecvOnly));
    assert_eq!(sdp.media.len(), 2);

    let audio = &sdp.media[0];
    assert_eq!((audio.media.as_str(), audio.port), ("audio", 49170));
    assert_eq!(audio.proto, "RTP/AVP");
    assert_eq!(audio.payload_types(), vec![0]);
    // PCMU is implied by the static payload type: no rtpmap needed.
    let pcmu = audio
        .codec(0)
        .map(|c| (c.encoding, c.clock_rate, c.channels));
    assert_eq!(pcmu, Some(("PCMU".to_owned(), 8000, 1)));
    // Media inherit the session-level direction.
    assert_eq!(sdp.media_direction(0), Direction::RecvOnly);
    assert_eq!(sdp.media_direction(1), Direction::RecvOnly);

    let video = &sdp.media[1];
    let h263 = video.codec(99).map(|c| (c.encoding, c.clock_rate));
    assert_eq!(h263, Some(("h263-1998".to_owned(), 90000)));
    assert_eq!(
        sdp.media_connection(1).map(|c| c.address.as_str()),
        Some("224.2.17.12")
    );
}

#[test]
fn every_sample_round_trips_byte_exact() {
    for sample in ALL_SAMPLES {
        let wire = crlf(sample);
        let sdp = parse(sample);
        assert_eq!(sdp.to_string(), wire, "sample:\n{sample}");
        // Bare LF input parses to the same model and comes out as CRLF.
        assert_eq!(SessionDescription::parse(sample).as_ref(), Ok(&sdp));
    }
}

#[test]
fn missing_final_newline_and_blank_lines_are_tolerated() {
    let text = "v=0\r\no=- 1 1 IN IP4 10.0.0.1\r\ns=-\r\n\r\nt=0 0\r\nm=audio 5004 RTP/AVP 0\r\nc=IN IP4 10.0.0.1";
    let sdp = SessionDescription::parse(text);
    assert_eq!(sdp.as_ref().map(|s| s.media.len()), Ok(1));
    assert_eq!(
        sdp.map(|s| s.to_string()),
        Ok("v=0\r\no=- 1 1 IN IP4 10.0.0.1\r\ns=-\r\nt=0 0\r\nm=audio 5004 RTP/AVP 0\r\nc=IN IP4 10.0.0.1\r\n".to_owned())
    );
}

#[test]
fn out_of_order_session_lines_are_accepted_and_normalized() {
    let text = "v=0\no=- 1 1 IN IP4 10.0.0.1\ns=-\nt=0 0\na=tool:x\nb=AS:80\nc=IN IP4 10.0.0.1\nm=audio 5004 RTP/AVP 0\n";
    let sdp = SessionDescription::parse(text);
    assert_eq!(sdp.as_ref().map(|s| s.bandwidth("AS")), Ok(Some(80)));
    assert_eq!(
        sdp.map(|s| s.to_string()),
        Ok(crlf(
            "v=0\no=- 1 1 IN IP4 10.0.0.1\ns=-\nc=IN IP4 10.0.0.1\nb=AS:80\nt=0 0\na=tool:x\nm=audio 5004 RTP/AVP 0\n"
        ))
    );
}

#[test]
fn common_sloppiness_is_forgiven() {
    let text = "v=0 \no=- 1 1 IN IP4 my_pc\ns=-\nc=IN IP4 10.0.0.1 \nb=AS:64 \nt=0 0\nm=audio 5004 RTP/AVP 0 \na=sendrecv \n";
    let sdp = SessionDescription::parse(text);
    assert_eq!(sdp.as_ref().map(|s| s.origin.address.as_str()), Ok("my_pc"));
    assert_eq!(sdp.as_ref().map(|s| s.bandwidth("AS")), Ok(Some(64)));
    assert_eq!(
        sdp.as_ref().map(|s| s.media[0].direction()),
        Ok(Some(Direction::SendRecv))
    );
    assert_eq!(
        sdp.map(|s| s.media[0].formats.clone()),
        Ok(vec!["0".to_owned()])
    );
}

#[test]
fn huge_media_sections_stay_linear() {
    let mut text = String::from(
        "v=0\no=- 1 1 IN IP4 10.0.0.1\ns=-\nc=IN IP4 10.0.0.1\nt=0 0\nm=audio 5004 RTP/AVP",
    );
    for pt in (0..20_000).map(|i| i % 128) {
        text.push_str(&format!(" {pt}"));
    }
    text.push('\n');
    for i in 0..20_000 {
        let pt = i % 128;
        text.push_str(&format!("a=rtpmap:{pt} X{i}/8000\na=fmtp:{pt} p={i}\n"));
    }
    let sdp = SessionDescription::parse(&text);
    let codecs = sdp
        .as_ref()
        .map(|s| s.media[0].codecs())
        .unwrap_or_default();
    assert_eq!(codecs.len(), 128);
    // The first rtpmap and fmtp for a payload type win.
    assert_eq!(
        codecs
            .first()
            .map(|c| (c.encoding.as_str(), c.fmtp.as_deref())),
        Some(("X0", Some("p=0")))
    );
}

#[test]
fn baresip_offer_typed_helpers() {
    let sdp = parse(BARESIP_OFFER);
    let audio = &sdp.media[0];
    let names: Vec<(u8, String)> = audio
        .codecs()
        .into_iter()
        .map(|c| (c.payload_type, c.encoding))
        .collect();
    assert_eq!(
        names,
        vec![
            (0, "PCMU".to_owned()),
            (8, "PCMA".to_owned()),
            (101, "telephone-event".to_owned())
        ]
    );
    let te = audio.telephone_event();
    assert_eq!(te.as_ref().map(|t| t.payload_type), Some(101));
    assert_eq!(te.as_ref().map(|t| t.clock_rate), Some(8000));
    assert_eq!(te.map(|t| t.events), Some(EventRanges::dtmf()));
    assert_eq!(audio.ptime(), Some(20));
    assert_eq!(audio.maxptime(), None);
    assert_eq!(audio.bandwidth("AS"), Some(64));
    assert_eq!(audio.direction(), Some(Direction::SendRecv));
    assert!(!audio.rtcp_mux());
    assert_eq!(audio.rtcp(), None);
    assert_eq!(audio.attribute("label"), Some("1"));
    assert_eq!(audio.attribute("rtcp-rsize"), Some(""));
    assert!(!sdp.is_on_hold(0));
}

#[test]
fn linphone_offer_static_and_dynamic_codecs() {
    let sdp = parse(LINPHONE_OFFER);
    assert_eq!(sdp.session_name, "Talk");
    assert_eq!(sdp.attribute("record"), Some("off"));
    assert_eq!(
        sdp.attribute("rtcp-xr"),
        Some("rcvr-rtt=all:10000 stat-summary=loss,dup,jitt,TTL voip-metrics")
    );
    let audio = &sdp.media[0];
    assert_eq!(
        audio.payload_types(),
        vec![96, 97, 98, 0, 8, 18, 101, 99, 100]
    );
    let opus = audio.codec(96);
    assert_eq!(opus.as_ref().map(|c| c.channels), Some(2));
    assert_eq!(opus.and_then(|c| c.fmtp), Some("useinbandfec=1".to_owned()));
    // G.729 has no rtpmap: the static table names it; its fmtp still applies.
    let g729 = audio.codec(18);
    assert_eq!(
        g729.map(|c| (c.encoding, c.clock_rate, c.fmtp)),
        Some(("G729".to_owned(), 8000, Some("annexb=yes".to_owned())))
    );
    let events: Vec<(u8, u32)> = audio
        .telephone_events()
        .iter()
        .map(|t| (t.payload_type, t.clock_rate))
        .collect();
    assert_eq!(events, vec![(101, 48000), (99, 16000), (100, 8000)]);
    let fb: Vec<&str> = audio.attributes_named("rtcp-fb").collect();
    assert_eq!(fb, vec!["* trr-int 1000", "* ccm tmmbr"]);
    assert_eq!(sdp.media_direction(0), Direction::SendRecv);
}

#[test]
fn chrome_offer_webrtc_attributes() {
    let sdp = parse(CHROME_OFFER);
    assert_eq!(sdp.connection, None);
    assert_eq!(sdp.attribute("msid-semantic"), Some(" WMS stream1"));
    assert_eq!(sdp.attribute("group"), Some("BUNDLE 0"));
    let audio = &sdp.media[0];
    assert_eq!(audio.proto, "UDP/TLS/RTP/SAVPF");
    assert!(audio.is_rtp());
    assert!(audio.rtcp_mux());
    assert_eq!(
        audio.rtcp(),
        Some(RtcpAttribute {
            port: 9,
            address: Some((AddrType::Ip4, "0.0.0.0".to_owned()))
        })
    );
    assert_eq!(audio.attributes_named("candidate").count(), 2);
    assert_eq!(audio.attribute("ice-ufrag"), Some("Oyef"));
    assert_eq!(audio.attribute("setup"), Some("actpass"));
    assert!(sdp.uses_ice(0));
    let codecs = audio.codecs();
    assert_eq!(codecs.len(), 7);
    assert!(
        codecs
            .iter()
            .any(|c| c.encoding == "red" && c.is_auxiliary())
    );
    let g722 = audio.codec(9).map(|c| (c.encoding, c.clock_rate));
    assert_eq!(g722, Some(("G722".to_owned(), 8000)));
    let events: Vec<u8> = audio
        .telephone_events()
        .iter()
        .map(|t| t.payload_type)
        .collect();
    assert_eq!(events, vec![110, 126]);
    assert_eq!(
        sdp.media_connection(0).map(|c| c.address.as_str()),
        Some("203.0.113.7")
    );
}

#[test]
fn g722_and_opus_offer() {
    let sdp = parse(G722_OPUS_OFFER);
    let audio = &sdp.media[0];
    // G.722 samples at 16 kHz but RFC 3551 keeps 8000 in SDP.
    let g722 = audio.codec(9).map(|c| (c.clock_rate, c.channels));
    assert_eq!(g722, Some((8000, 1)));
    let opus = audio.codec(96);
    assert_eq!(
        opus.as_ref()
            .map(|c| (c.encoding.as_str(), c.clock_rate, c.channels)),
        Some(("opus", 48000, 2))
    );
    assert_eq!(
        audio.fmtp(96),
        Some("maxplaybackrate=16000;sprop-maxcapturerate=16000;useinbandfec=1")
    );
    assert_eq!(
        audio.telephone_event().map(|t| t.events.to_string()),
        Some("0-16".to_owned())
    );
    assert_eq!(audio.ptime(), Some(20));
    assert_eq!(audio.maxptime(), Some(40));
}

#[test]
fn static_payload_types_without_rtpmap() {
    let sdp = parse(
        "v=0\no=- 1 1 IN IP4 10.0.0.1\ns=-\nc=IN IP4 10.0.0.1\nt=0 0\nm=audio 5004 RTP/AVP 0 3 4 8 9 18 13\n",
    );
    let codecs: Vec<(u8, String, u32)> = sdp.media[0]
        .codecs()
        .into_iter()
        .map(|c| (c.payload_type, c.encoding, c.clock_rate))
        .collect();
    let expected = [
        (0, "PCMU"),
        (3, "GSM"),
        (4, "G723"),
        (8, "PCMA"),
        (9, "G722"),
        (18, "G729"),
        (13, "CN"),
    ];
    let expected: Vec<(u8, String, u32)> = expected
        .iter()
        .map(|&(pt, name)| (pt, name.to_owned(), 8000))
        .collect();
    assert_eq!(codecs, expected);
    // A dynamic payload type with no rtpmap is unknown, not invented.
    let sdp = parse(
        "v=0\no=- 1 1 IN IP4 10.0.0.1\ns=-\nc=IN IP4 10.0.0.1\nt=0 0\nm=audio 5004 RTP/AVP 96 0\n",
    );
    assert_eq!(sdp.media[0].codec(96), None);
    assert_eq!(sdp.media[0].codecs().len(), 1);
}

#[test]
fn media_direction_overrides_session_default() {
    let sdp = parse(
        "v=0\no=- 1 1 IN IP4 10.0.0.1\ns=-\nc=IN IP4 10.0.0.1\nt=0 0\na=sendonly\nm=audio 5004 RTP/AVP 0\nm=audio 5006 RTP/AVP 0\na=inactive\nm=audio 5008 RTP/AVP 0\na=sendrecv\n",
    );
    assert_eq!(sdp.media_direction(0), Direction::SendOnly);
    assert_eq!(sdp.media_direction(1), Direction::Inactive);
    assert_eq!(sdp.media_direction(2), Direction::SendRecv);
    assert!(sdp.is_on_hold(0));
    assert!(sdp.is_on_hold(1));
    assert!(!sdp.is_on_hold(2));
    assert_eq!(Direction::SendOnly.reversed(), Direction::RecvOnly);
    assert_eq!(Direction::Inactive.reversed(), Direction::Inactive);
}

#[test]
fn ipv6_rtcp_with_address_and_non_rtp_stream() {
    let sdp = parse(IPV6_OFFER);
    assert_eq!(sdp.origin.addr_type, AddrType::Ip6);
    assert_eq!(
        sdp.connection.as_ref().and_then(Connection::ip),
        Some(ip("2001:db8::10"))
    );
    let rtcp = sdp.media[0].rtcp();
    assert_eq!(rtcp.as_ref().map(|r| r.port), Some(53020));
    assert_eq!(rtcp.and_then(|r| r.ip()), Some(ip("2001:db8::11")));
    let image = &sdp.media[1];
    assert_eq!(
        (image.media.as_str(), image.proto.as_str()),
        ("image", "udptl")
    );
    assert!(!image.is_rtp());
    assert_eq!(formats(image), vec!["t38"]);
    assert_eq!(image.payload_types(), Vec::<u8>::new());
}

#[test]
fn connection_multicast_suffixes_and_names() {
    let sdp = parse(
        "v=0\no=- 1 1 IN IP6 ff15::101\ns=-\nc=IN IP6 ff15::101/3\nt=0 0\nm=audio 5004/2 RTP/AVP 0\nc=IN IP4 media.example.com\n",
    );
    let c = sdp.connection.as_ref().map(|c| (c.ttl, c.count));
    assert_eq!(c, Some((None, Some(3))));
    assert_eq!(sdp.media[0].port_count, Some(2));
    assert_eq!(sdp.media[0].connections[0].ip(), None);
    assert_eq!(sdp.media[0].connections[0].address, "media.example.com");
}

#[test]
fn event_ranges_parse_print_intersect() {
    let offered = EventRanges::parse("0-15, 66,70-71,16");
    assert_eq!(
        offered.as_ref().map(|e| e.ranges().to_vec()),
        Some(vec![(0, 16), (66, 66), (70, 71)])
    );
    assert_eq!(
        offered.as_ref().map(ToString::to_string),
        Some("0-16,66,70-71".to_owned())
    );
    let ours = EventRanges::from_ranges(&[(0, 15), (70, 70)]);
    assert_eq!(
        offered.map(|o| o.intersection(&ours).to_string()),
        Some("0-15,70".to_owned())
    );
    assert_eq!(EventRanges::parse("0-x"), None);
    assert_eq!(EventRanges::parse("300"), None);
    assert!(EventRanges::dtmf().contains(15));
    assert!(!EventRanges::dtmf().contains(16));
}

#[test]
fn attribute_setters_keep_position() {
    let mut sdp = parse(BARESIP_OFFER);
    let audio = &mut sdp.media[0];
    audio.set_direction(Direction::SendOnly);
    audio.set_attribute("ptime", Some("30".to_owned()));
    audio.remove_attribute("label");
    let names: Vec<&str> = audio.attributes.iter().map(|a| a.name.as_str()).collect();
    assert_eq!(
        names,
        vec![
            "rtpmap",
            "rtpmap",
            "rtpmap",
            "fmtp",
            "sendonly",
            "rtcp-rsize",
            "ssrc",
            "ptime"
        ]
    );
    assert_eq!(audio.ptime(), Some(30));
    assert!(sdp.is_on_hold(0));
}

// --------------------------------------------------------------- errors

#[test]
fn invalid_inputs_are_errors_with_line_and_reason() {
    let head = "v=0\no=- 1 1 IN IP4 10.0.0.1\ns=-\nc=IN IP4 10.0.0.1\nt=0 0\n";
    let cases: Vec<(String, usize, &str)> = vec![
        (String::new(), 1, "missing v= line"),
        ("hello world".to_owned(), 1, "line is not <type>=<value>"),
        ("o=- 1 1 IN IP4 10.0.0.1\n".to_owned(), 1, "missing v= line"),
        ("v=1\n".to_owned(), 1, "unsupported SDP version"),
        ("v=0\ns=-\n".to_owned(), 2, "missing o= line"),
        (
            "v=0\no=- 1 1 IN IP4 10.0.0.1\nt=0 0\n".to_owned(),
            3,
            "missing s= line",
        ),
        (
            "v=0\no=- 1 IN IP4 10.0.0.1\ns=-\n".to_owned(),
            2,
            "o= line needs 6 fields",
        ),
        (
            "v=0\no=- 1 x IN IP4 10.0.0.1\ns=-\n".to_owned(),
            2,
            "bad o= session version",
        ),
        (
            "v=0\no=- 1 1 IN IP4 10.0.0.1\ns=-\nm=audio 5004 RTP/AVP 0\n".to_owned(),
            4,
            "missing t= line",
        ),
        (format!("{head}m=audio 70000 RTP/AVP 0\n"), 6, "bad m= port"),
        (format!("{head}m=audio -1 RTP/AVP 0\n"), 6, "bad m= port"),
        (format!("{head}m=audio abc RTP/AVP 0\n"), 6, "bad m= port"),
        (
            format!("{head}m=audio 5004 RTP/AVP 0 PCMU\n"),
            6,
            "bad m= payload type",
        ),
        (
            format!("{head}m=audio 5004 RTP/AVP 128\n"),
            6,
            "bad m= payload type",
        ),
        (
            format!("{head}m=audio 5004 RTP/AVP\n"),
            6,
            "m= line has no formats",
        ),
        (
            format!("{head}m=audio 5004\n"),
            6,
            "m= line needs media, port, proto",
        ),
        (
            format!("{head}m=audio 5004/x RTP/AVP 0\n"),
            6,
            "bad m= port count",
        ),
        (
            "v=0\no=- 1 1 IN IP4 10.0.0.1\ns=-\nc=IN IP4 999.0.0.1\nt=0 0\n".to_owned(),
            4,
            "bad c= address",
        ),
        (
            "v=0\no=- 1 1 IN IP4 10.0.0.1\ns=-\nc=IN IP4 ::1\nt=0 0\n".to_owned(),
            4,
            "bad c= address",
        ),
        (
            "v=0\no=- 1 1 IN IP4 10.0.0.1\ns=-\nc=IN IP5 10.0.0.1\nt=0 0\n".to_owned(),
            4,
            "bad address type",
        ),
        (
            "v=0\no=- 1 1 IN IP4 10.0.0.1\ns=-\nc=IN IP4 a_b!\nt=0 0\n".to_owned(),
            4,
            "bad c= address",
        ),
        (
            "v=0\no=- 1 1 IN IP4 10.0.0.1\ns=-\nc=IN IP4 10.0.0.1/x\nt=0 0\n".to_owned(),
            4,
            "bad c= multicast suffix",
        ),
        (
            "v=0\no=- 1 1 IN IP4 10.0.0.1\ns=-\nc=ATM NSAP x\nt=0 0\n".to_owned(),
            4,
            "unsupported network type",
        ),
        (
            format!("{head}c=IN IP4 10.0.0.2\n"),
            6,
            "duplicate session c= line",
        ),
        (format!("{head}x=unknown\n"), 6, "unknown line type"),
        (
            format!("{head}m=audio 5004 RTP/AVP 0\nt=0 0\n"),
            7,
            "session-level line inside media",
        ),
        (
            "v=0\no=- 1 1 IN IP4 10.0.0.1\ns=-\nr=7d 1h 0 25h\nt=0 0\n".to_owned(),
            4,
            "r= line before t= line",
        ),
        (
            "v=0\no=- 1 1 IN IP4 10.0.0.1\ns=-\nt=0 0\nm=audio 5004 RTP/AVP 0\n".to_owned(),
            5,
            "missing c= line for media",
        ),
        (format!("{head}b=AS\n"), 6, "bad b= line"),
        (format!("{head}t=now later\n"), 6, "bad t= line"),
        (format!("{head}a=\n"), 6, "bad a= attribute name"),
        (format!("{head}a=foo\rbar\n"), 6, "CR or NUL inside a line"),
        (format!("{head}A=x\n"), 6, "line is not <type>=<value>"),
        (format!("{head}v=0\n"), 6, "duplicate v=, o= or s= line"),
    ];
    for (text, line, reason) in cases {
        let e = error_of(&text);
        assert_eq!(
            (e.line(), e.reason()),
            (Some(line), reason),
            "input:\n{text}"
        );
        assert_eq!(e.sip_status(), 400);
    }
    let e = error_of("v=0\nbad\n");
    assert_eq!(e.to_string(), "SDP line 2: line is not <type>=<value>");
}

#[test]
fn disabled_stream_may_lack_a_connection() {
    let sdp = SessionDescription::parse(
        "v=0\no=- 1 1 IN IP4 10.0.0.1\ns=-\nt=0 0\nm=video 0 RTP/AVP 31\nm=audio 5004 RTP/AVP 0\nc=IN IP4 10.0.0.1\n",
    );
    assert_eq!(sdp.map(|s| s.media.len()), Ok(2));
}

/// xorshift64: deterministic, dependency-free randomness for fuzz-like tests.
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
        if n == 0 {
            0
        } else {
            (self.next() % n as u64) as usize
        }
    }
}

#[test]
fn mutated_samples_never_panic_and_round_trip() {
    const ALPHABET: &[u8] = b"vosicbtrzkam= :/0123456789.-\r\nIP4IP6INRTP/AVPrtpmap";
    let mut rng = XorShift(0x9E37_79B9_7F4A_7C15);
    let mut parsed = 0usize;
    for round in 0..4000 {
        let sample = ALL_SAMPLES[round % ALL_SAMPLES.len()];
        let mut bytes = crlf(sample).into_bytes();
        for _ in 0..=rng.below(4) {
            let at = rng.below(bytes.len() + 1);
            match rng.below(6) {
                0 if at < bytes.len() => bytes[at] = rng.next() as u8,
                1 if at < bytes.len() => {
                    bytes.remove(at);
                }
                2 => {
                    let byte = ALPHABET[rng.below(ALPHABET.len())];
                    bytes.insert(at, byte);
                }
                3 => bytes.truncate(at),
                4 => {
                    // Duplicate a stretch, often a whole line.
                    let len = rng.below(40);
                    let end = (at + len).min(bytes.len());
                    let piece: Vec<u8> = bytes[at..end].to_vec();
                    let to = rng.below(bytes.len() + 1);
                    bytes.splice(to..to, piece);
                }
                _ if at < bytes.len() => bytes[at] = ALPHABET[rng.below(ALPHABET.len())],
                _ => {}
            }
        }
        if let Ok(text) = std::str::from_utf8(&bytes)
            && SessionDescription::parse(text).is_ok()
        {
            parsed += 1;
        }
        parse_fuzz(&bytes);
    }
    // The mutations should leave a fair share valid, exercising the
    // serializer and negotiation paths, not just error paths.
    assert!(parsed > 400, "only {parsed} mutants parsed");
}

#[test]
fn random_garbage_never_panics() {
    let mut rng = XorShift(42);
    for _ in 0..2000 {
        let len = rng.below(200);
        let bytes: Vec<u8> = (0..len)
            .map(|_| match rng.below(3) {
                0 => rng.next() as u8,
                1 => b"v=0\r\n"[rng.below(5)],
                _ => b"m=audio 0 RTP/AVP c=IN IP4 1.2.3.4\n"[rng.below(35)],
            })
            .collect();
        parse_fuzz(&bytes);
    }
}

// -------------------------------------------------------------- rewrites

#[test]
fn rewrite_connection_touches_every_address() {
    let mut sdp = parse(IPV6_OFFER);
    sdp.rewrite_connection(ip("192.0.2.1"));
    sdp.bump_version();
    assert_eq!(sdp.origin.address, "192.0.2.1");
    assert_eq!(sdp.origin.addr_type, AddrType::Ip4);
    assert_eq!(sdp.origin.session_version, 1);
    assert_eq!(
        sdp.media[0].rtcp(),
        Some(RtcpAttribute {
            port: 53020,
            address: Some((AddrType::Ip4, "192.0.2.1".to_owned()))
        })
    );
    let expected = "\
v=0
o=- 20518 1 IN IP4 192.0.2.1
s=-
c=IN IP4 192.0.2.1
t=0 0
m=audio 49230 RTP/AVP 8 0
a=rtcp:53020 IN IP4 192.0.2.1
a=rtpmap:8 PCMA/8000
a=rtpmap:0 PCMU/8000
m=image 49232 udptl t38
a=T38FaxVersion:0
a=T38FaxRateManagement:transferredTCF
";
    assert_eq!(sdp.to_string(), crlf(expected));
}

#[test]
fn rewrite_connection_media_level_only() {
    let mut sdp = parse(CHROME_OFFER);
    sdp.rewrite_connection(ip("2001:db8::1"));
    // No session c= was there and every stream had its own: none is added.
    assert_eq!(sdp.connection, None);
    assert_eq!(
        sdp.media[0].connections,
        vec![Connection::new(ip("2001:db8::1"))]
    );
    assert_eq!(sdp.origin.addr_type, AddrType::Ip6);
    assert_eq!(sdp.media[0].attribute("rtcp"), Some("9 IN IP6 2001:db8::1"));
}

#[test]
fn set_media_port_moves_rtcp() {
    let mut sdp = parse(IPV6_OFFER);
    assert_eq!(sdp.set_media_port(0, 30000), Ok(()));
    assert_eq!(sdp.media[0].port, 30000);
    assert_eq!(sdp.media[0].rtcp().map(|r| r.port), Some(30001));

    let mut chrome = parse(CHROME_OFFER);
    assert_eq!(chrome.set_media_port(0, 30000), Ok(()));
    // Under rtcp-mux RTCP shares the RTP port.
    assert_eq!(chrome.media[0].rtcp().map(|r| r.port), Some(30000));

    assert_eq!(chrome.set_media_port(0, 0), Ok(()));
    assert_eq!(chrome.media[0].rtcp(), None);
    assert_eq!(
        chrome.set_media_port(5, 1),
        Err(SdpError::Media {
            index: 5,
            reason: "no such m= line"
        })
    );
    assert_eq!(
        chrome.set_media_rtcp(
            0,
            Some(RtcpAttribute {
                port: 7001,
                address: None
            })
        ),
        Ok(())
    );
    assert_eq!(chrome.media[0].attribute("rtcp"), Some("7001"));
}

#[test]
fn anchor_strips_ice_and_bumps_version() {
    let mut sdp = parse(CHROME_OFFER);
    let result = sdp.anchor(ip("192.0.2.1"), &[30000], &AnchorOptions::default());
    assert_eq!(result, Ok(()));
    assert_eq!(sdp.origin.session_version, 3);
    let audio = &sdp.media[0];
    assert_eq!(audio.port, 30000);
    assert_eq!(audio.connections, vec![Connection::new(ip("192.0.2.1"))]);
    assert_eq!(audio.attribute("rtcp"), Some("30000 IN IP4 192.0.2.1"));
    assert_eq!(audio.attributes_named("candidate").count(), 0);
    assert!(!audio.has_attribute("ice-ufrag"));
    assert!(!audio.has_attribute("ice-pwd"));
    assert!(!audio.has_attribute("ice-options"));
    // Everything else stays, in order.
    assert_eq!(audio.attribute("fingerprint").map(|f| f.len()), Some(103));
    assert_eq!(audio.attributes_named("rtpmap").count(), 7);
    assert!(audio.rtcp_mux());
    assert_eq!(sdp.attribute("group"), Some("BUNDLE 0"));
    assert_eq!(
        SessionDescription::parse(&sdp.to_string()).as_ref(),
        Ok(&sdp)
    );

    let mut kept = parse(CHROME_OFFER);
    let options = AnchorOptions {
        keep_ice: true,
        keep_version: true,
    };
    assert_eq!(kept.anchor(ip("192.0.2.1"), &[30000], &options), Ok(()));
    assert_eq!(kept.origin.session_version, 2);
    assert_eq!(kept.media[0].attributes_named("candidate").count(), 2);
}

#[test]
fn anchor_turns_zero_address_hold_into_direction() {
    let mut sdp = parse(
        "v=0\no=- 1 5 IN IP4 10.0.0.1\ns=-\nc=IN IP4 0.0.0.0\nt=0 0\nm=audio 5004 RTP/AVP 0\nm=video 0 RTP/AVP 31\n",
    );
    assert!(sdp.is_on_hold(0));
    assert_eq!(
        sdp.anchor(ip("192.0.2.1"), &[30000], &AnchorOptions::default()),
        Ok(())
    );
    assert_eq!(sdp.media[0].direction(), Some(Direction::SendOnly));
    assert_eq!(sdp.media[0].port, 30000);
    // The disabled stream keeps port 0 and needs no relay port.
    assert_eq!(sdp.media[1].port, 0);
    assert!(sdp.is_on_hold(0));
    assert_eq!(
        sdp.connection.as_ref().map(|c| c.address.as_str()),
        Some("192.0.2.1")
    );
    let mut short = parse(BARESIP_OFFER);
    assert_eq!(
        short.anchor(ip("192.0.2.1"), &[], &AnchorOptions::default()),
        Err(SdpError::Media {
            index: 0,
            reason: "no relay port for stream"
        })
    );
}

// ---------------------------------------------------------- offer/answer

#[test]
fn answer_prefers_answerer_order_by_default() {
    let offer = parse(BARESIP_OFFER);
    let ans = answer_to(&offer, &pcmu_pcma_caps());
    assert_eq!(ans.media.len(), 1);
    let audio = &ans.media[0];
    assert_eq!(audio.port, 40000);
    assert_eq!(audio.proto, "RTP/AVP");
    assert_eq!(formats(audio), vec!["8", "0", "101"]);
    assert_eq!(audio.direction(), Some(Direction::SendRecv));
    assert_eq!(
        audio.telephone_event().map(|t| (t.payload_type, t.events)),
        Some((101, EventRanges::dtmf()))
    );
    assert!(!audio.rtcp_mux());
    assert_eq!(ans.origin.address, "192.0.2.1");
    assert_eq!(
        ans.connection.as_ref().map(|c| c.address.as_str()),
        Some("192.0.2.1")
    );
    // What we write must be what we read.
    assert_eq!(
        SessionDescription::parse(&ans.to_string()).as_ref(),
        Ok(&ans)
    );

    let mut caps = pcmu_pcma_caps();
    caps.order = CodecOrder::Offerer;
    assert_eq!(
        formats(&answer_to(&offer, &caps).media[0]),
        vec!["0", "8", "101"]
    );
    caps.max_codecs = Some(1);
    assert_eq!(
        formats(&answer_to(&offer, &caps).media[0]),
        vec!["0", "101"]
    );
}

#[test]
fn answer_keeps_offerer_dynamic_payload_types_and_matching_events() {
    let offer = parse(LINPHONE_OFFER);
    let caps = Capabilities::audio(vec![
        LocalCodec::new("OPUS", 48000, 2).with_fmtp("useinbandfec=1;stereo=0"),
        LocalCodec::new("G729", 8000, 1),
        LocalCodec::new("speex", 32000, 1),
    ]);
    let ans = answer_to(&offer, &caps);
    let audio = &ans.media[0];
    // The offerer's 96 for opus, static 18 for G.729, and the event format
    // clocked like the first codec (48 kHz, PT 101).
    assert_eq!(formats(audio), vec!["96", "18", "101"]);
    let opus = audio.codec(96);
    assert_eq!(
        opus.as_ref()
            .map(|c| (c.encoding.as_str(), c.clock_rate, c.channels)),
        Some(("opus", 48000, 2))
    );
    assert_eq!(
        opus.and_then(|c| c.fmtp),
        Some("useinbandfec=1;stereo=0".to_owned())
    );
    // No local fmtp: the offer's is echoed.
    assert_eq!(audio.fmtp(18), Some("annexb=yes"));
    assert_eq!(
        audio
            .telephone_event()
            .map(|t| (t.payload_type, t.clock_rate)),
        Some((101, 48000))
    );
}

#[test]
fn answer_rejects_with_port_zero_when_nothing_in_common() {
    let offer = parse(RFC4317_2_1_OFFER);
    let caps = Capabilities::audio(vec![LocalCodec::new("G729", 8000, 1)]);
    let ans = answer_to(&offer, &caps);
    assert_eq!(ans.media.len(), 2);
    for (media, first) in ans.media.iter().zip(["0", "31"]) {
        assert_eq!(media.port, 0);
        assert_eq!(formats(media), vec![first]);
        assert!(media.attributes.is_empty());
    }
    assert_eq!(ans.media[1].media, "video");
    assert_eq!(
        SessionDescription::parse(&ans.to_string()).as_ref(),
        Ok(&ans)
    );
    // An SRTP offer to a plain-RTP answerer is rejected too.
    let chrome = parse(CHROME_OFFER);
    assert_eq!(answer_to(&chrome, &pcmu_pcma_caps()).media[0].port, 0);
    // And so is a stream we have no port for.
    let baresip = parse(BARESIP_OFFER);
    let no_port = answer(&baresip, &pcmu_pcma_caps(), &local(&[]));
    assert_eq!(no_port.map(|a| a.media[0].port), Ok(0));
}

#[test]
fn answer_rfc4317_audio_and_video_1() {
    let offer = parse(RFC4317_2_1_OFFER);
    let mut caps = Capabilities::audio(vec![LocalCodec::new("PCMU", 8000, 1)]);
    caps.media.push(MediaCapabilities {
        media: "video".to_owned(),
        protos: vec!["RTP/AVP".to_owned()],
        codecs: vec![LocalCodec::new("MPV", 90000, 1)],
        telephone_events: None,
        ptime: None,
        rtcp_mux: false,
    });
    let ans = answer_to(&offer, &caps);
    // The same choices Bob makes in RFC 4317 §2.1.
    assert_eq!(formats(&ans.media[0]), vec!["0"]);
    assert_eq!(formats(&ans.media[1]), vec!["32"]);
    assert_eq!((ans.media[0].port, ans.media[1].port), (40000, 40002));
    // No telephone-event offered, so none answered.
    assert_eq!(ans.media[0].telephone_event(), None);

    let streams = negotiated(&offer, &parse(RFC4317_2_1_ANSWER));
    let summary: Vec<(String, Option<u8>, Option<String>, u16)> = streams
        .unwrap_or_default()
        .into_iter()
        .map(|s| {
            (
                s.media,
                s.codec.as_ref().map(|c| c.payload_type),
                s.answerer.as_ref().map(|e| e.address.clone()),
                s.answerer.as_ref().map_or(0, |e| e.rtp_port),
            )
        })
        .collect();
    assert_eq!(
        summary,
        vec![
            (
                "audio".to_owned(),
                Some(0),
                Some("host.biloxi.example.com".to_owned()),
                49174
            ),
            (
                "video".to_owned(),
                Some(32),
                Some("host.biloxi.example.com".to_owned()),
                49170
            ),
        ]
    );
}

#[test]
fn negotiated_rfc4317_two_audio_streams() {
    let offer = parse(RFC4317_2_4_OFFER);
    let streams = negotiated(&offer, &parse(RFC4317_2_4_ANSWER)).unwrap_or_default();
    assert_eq!(streams.len(), 2);
    assert_eq!(
        streams[0].codec.as_ref().map(|c| c.encoding.as_str()),
        Some("iLBC")
    );
    assert_eq!(streams[0].offer_payload_type, Some(97));
    // The second stream carries events only.
    assert_eq!(streams[1].codec.as_ref().map(|c| c.payload_type), Some(98));
    assert_eq!(streams[1].offer_direction, Direction::SendOnly);
    assert_eq!(streams[1].answer_direction, Direction::RecvOnly);
    assert!(streams[1].offerer_holds);
    assert!(!streams[1].answerer_holds);
    let offerer = streams[1].offerer.clone();
    assert_eq!(offerer.as_ref().map(|e| e.rtp_port), Some(49172));
    assert_eq!(offerer.as_ref().map(|e| e.rtcp_port), Some(49173));
    assert_eq!(offerer.and_then(|e| e.rtp()), None, "a name is not an IP");
}

#[test]
fn answer_direction_per_rfc3264_section_6_1() {
    let base =
        "v=0\no=- 1 1 IN IP4 10.0.0.1\ns=-\nc=IN IP4 10.0.0.1\nt=0 0\nm=audio 5004 RTP/AVP 0\n";
    let mut caps = pcmu_pcma_caps();
    let cases = [
        ("a=sendonly\n", Direction::SendRecv, Direction::RecvOnly),
        ("a=recvonly\n", Direction::SendRecv, Direction::SendOnly),
        ("a=inactive\n", Direction::SendRecv, Direction::Inactive),
        ("", Direction::SendRecv, Direction::SendRecv),
        ("a=sendrecv\n", Direction::SendOnly, Direction::SendOnly),
        ("a=sendrecv\n", Direction::Inactive, Direction::Inactive),
        ("a=sendonly\n", Direction::SendOnly, Direction::Inactive),
    ];
    for (attr, local_choice, expected) in cases {
        caps.direction = local_choice;
        let offer = parse(&format!("{base}{attr}"));
        let ans = answer_to(&offer, &caps);
        assert_eq!(
            ans.media[0].direction(),
            Some(expected),
            "offer {attr:?}, local {local_choice}"
        );
    }
}

#[test]
fn hold_and_resume() {
    // RFC 3264 §8.4 hold: the offer goes sendonly, the answer recvonly.
    let hold = parse(RFC4317_HOLD_OFFER);
    let caps = Capabilities::audio(vec![LocalCodec::new("iLBC", 8000, 1)]);
    let ans = answer_to(&hold, &caps);
    assert_eq!(ans.media[0].direction(), Some(Direction::RecvOnly));
    let streams = negotiated(&hold, &ans).unwrap_or_default();
    assert_eq!(streams.len(), 1);
    assert!(streams[0].offerer_holds);
    assert!(streams[0].on_hold());

    // Resume: the next offer drops sendonly (and bumps the version).
    let mut resume = hold.clone();
    resume.remove_attribute("sendonly");
    resume.media[0].remove_attribute("sendonly");
    resume.bump_version();
    assert_eq!(resume.origin.session_version, 2808844566);
    let ans = answer_to(&resume, &caps);
    assert_eq!(ans.media[0].direction(), Some(Direction::SendRecv));
    let streams = negotiated(&resume, &ans).unwrap_or_default();
    assert!(!streams.iter().any(NegotiatedStream::on_hold));

    // RFC 2543 hold: c=0.0.0.0 — we must not send there.
    let old = parse(
        "v=0\no=- 1 2 IN IP4 10.0.0.1\ns=-\nc=IN IP4 0.0.0.0\nt=0 0\nm=audio 5004 RTP/AVP 0\n",
    );
    let ans = answer_to(&old, &pcmu_pcma_caps());
    assert_eq!(ans.media[0].direction(), Some(Direction::RecvOnly));
    let streams = negotiated(&old, &ans).unwrap_or_default();
    assert!(streams[0].offerer_holds);
    assert!(!streams[0].answerer_holds);
}

#[test]
fn answer_rtcp_mux_ptime_and_webrtc_profile() {
    let offer = parse(CHROME_OFFER);
    let mut caps = Capabilities::audio(vec![
        LocalCodec::new("opus", 48000, 2),
        LocalCodec::new("PCMU", 8000, 1),
    ]);
    caps.media[0].protos.push("UDP/TLS/RTP/SAVPF".to_owned());
    caps.media[0].ptime = Some(20);
    let ans = answer_to(&offer, &caps);
    let audio = &ans.media[0];
    assert_eq!(audio.proto, "UDP/TLS/RTP/SAVPF");
    // RED is auxiliary, never chosen as the codec; events at 48 kHz.
    assert_eq!(formats(audio), vec!["111", "0", "110"]);
    assert!(audio.rtcp_mux());
    assert_eq!(audio.ptime(), Some(20));

    let streams = negotiated(&offer, &ans).unwrap_or_default();
    let s = &streams[0];
    assert_eq!(s.codec.as_ref().map(|c| c.payload_type), Some(111));
    assert_eq!(
        s.telephone_event.as_ref().map(|t| t.payload_type),
        Some(110)
    );
    assert!(s.rtcp_mux);
    assert_eq!(s.ptime, Some(20));
    let offerer = s.offerer.clone();
    assert_eq!(
        offerer.as_ref().and_then(MediaEndpoint::rtp),
        Some(
            "203.0.113.7:54400"
                .parse()
                .unwrap_or(std::net::SocketAddr::new(ip("0.0.0.0"), 0))
        )
    );
    // rtcp-mux wins over a=rtcp's port.
    assert_eq!(offerer.as_ref().map(|e| e.rtcp_port), Some(54400));
    assert_eq!(
        s.answerer.as_ref().and_then(MediaEndpoint::rtcp),
        Some(std::net::SocketAddr::new(ip("192.0.2.1"), 40000))
    );

    // Without rtcp-mux support it is not echoed; RTCP goes to port + 1.
    caps.media[0].rtcp_mux = false;
    let ans = answer_to(&offer, &caps);
    assert!(!ans.media[0].rtcp_mux());
    let streams = negotiated(&offer, &ans).unwrap_or_default();
    assert!(!streams[0].rtcp_mux);
    assert_eq!(
        streams[0].answerer.as_ref().map(|e| e.rtcp_port),
        Some(40001)
    );
    // The offerer's a=rtcp names its RTCP port and address.
    let offerer = streams[0].offerer.clone();
    assert_eq!(
        offerer.map(|e| (e.rtcp_address, e.rtcp_port)),
        Some(("0.0.0.0".to_owned(), 9))
    );
}

#[test]
fn answer_telephone_event_intersection() {
    let offer = parse(G722_OPUS_OFFER);
    let mut caps = Capabilities::audio(vec![LocalCodec::new("G722", 8000, 1)]);
    // Offer 0-16 ∩ ours 0-16.
    let ans = answer_to(&offer, &caps);
    assert_eq!(
        ans.media[0].telephone_event().map(|t| t.events.to_string()),
        Some("0-16".to_owned())
    );
    caps.media[0].telephone_events = Some(EventRanges::dtmf());
    let ans = answer_to(&offer, &caps);
    assert_eq!(ans.media[0].fmtp(101), Some("0-15"));
    caps.media[0].telephone_events = Some(EventRanges::from_ranges(&[(32, 40)]));
    let ans = answer_to(&offer, &caps);
    assert_eq!(ans.media[0].telephone_event(), None, "nothing in common");
    caps.media[0].telephone_events = None;
    let ans = answer_to(&offer, &caps);
    assert_eq!(formats(&ans.media[0]), vec!["9"]);
}

#[test]
fn negotiated_maps_differing_payload_types() {
    let offer = parse(
        "v=0\no=- 1 1 IN IP4 10.0.0.1\ns=-\nc=IN IP4 10.0.0.1\nt=0 0\nm=audio 5004 RTP/AVP 96 101\na=rtpmap:96 opus/48000/2\na=rtpmap:101 telephone-event/48000\n",
    );
    let ans = parse(
        "v=0\no=- 2 1 IN IP4 10.0.0.2\ns=-\nc=IN IP4 10.0.0.2\nt=0 0\nm=audio 6000 RTP/AVP 111 101\na=rtpmap:111 OPUS/48000/2\na=rtpmap:101 telephone-event/48000\na=rtcp:6001 IN IP4 10.0.0.3\n",
    );
    let streams = negotiated(&offer, &ans).unwrap_or_default();
    let s = &streams[0];
    assert_eq!(s.codec.as_ref().map(|c| c.payload_type), Some(111));
    assert_eq!(s.offer_payload_type, Some(96));
    assert_eq!(
        s.telephone_event.as_ref().map(|t| t.payload_type),
        Some(101)
    );
    assert_eq!(
        s.answerer.as_ref().and_then(MediaEndpoint::rtcp),
        Some(std::net::SocketAddr::new(ip("10.0.0.3"), 6001))
    );
    assert_eq!(s.offerer.as_ref().map(|e| e.rtcp_port), Some(5005));
}

#[test]
fn negotiated_errors() {
    let offer = parse(RFC4317_2_1_OFFER);
    let one = parse(
        "v=0\no=- 2 1 IN IP4 10.0.0.2\ns=-\nc=IN IP4 10.0.0.2\nt=0 0\nm=audio 6000 RTP/AVP 0\n",
    );
    let e = negotiated(&offer, &one);
    assert_eq!(
        e.as_ref().map_err(SdpError::reason).err(),
        Some("answer has a different number of m= lines")
    );
    assert_eq!(e.err().map(|e| e.sip_status()), Some(488));

    let swapped = parse(
        "v=0\no=- 2 1 IN IP4 10.0.0.2\ns=-\nc=IN IP4 10.0.0.2\nt=0 0\nm=video 6000 RTP/AVP 31\nm=audio 6002 RTP/AVP 0\n",
    );
    assert_eq!(
        negotiated(&offer, &swapped).err(),
        Some(SdpError::Media {
            index: 0,
            reason: "answer changed the media type"
        })
    );
    let foreign = parse(
        "v=0\no=- 2 1 IN IP4 10.0.0.2\ns=-\nc=IN IP4 10.0.0.2\nt=0 0\nm=audio 6000 RTP/AVP 18\nm=video 0 RTP/AVP 31\n",
    );
    assert_eq!(
        negotiated(&offer, &foreign).err(),
        Some(SdpError::Media {
            index: 0,
            reason: "no common codec"
        })
    );
    // A rejected stream is reported, not an error.
    let rejected = parse(
        "v=0\no=- 2 1 IN IP4 10.0.0.2\ns=-\nc=IN IP4 10.0.0.2\nt=0 0\nm=audio 0 RTP/AVP 0\nm=video 0 RTP/AVP 31\n",
    );
    let streams = negotiated(&offer, &rejected).unwrap_or_default();
    assert_eq!(streams.len(), 2);
    assert!(
        streams
            .iter()
            .all(|s| !s.accepted && s.codec.is_none() && s.offerer.is_none())
    );
}

// --------------------------------------------------------------- builder

#[test]
fn builder_writes_a_usable_offer() {
    let offer = OfferBuilder::new(ip("192.0.2.7"), 20000)
        .origin("tandem", "4242", 1)
        .session_name("tandem")
        .codec(LocalCodec::new("opus", 48000, 2).with_fmtp("useinbandfec=1"))
        .codec(LocalCodec::new("PCMU", 8000, 1))
        .codec(LocalCodec::new("G722", 8000, 1))
        .codec(LocalCodec::new("L16", 16000, 1))
        .telephone_event(EventRanges::from_ranges(&[(0, 16)]))
        .ptime(20)
        .rtcp_mux(true)
        .direction(Direction::SendRecv)
        .build();
    let offer = match offer {
        Ok(offer) => offer,
        Err(e) => panic!("build failed: {e}"),
    };
    let audio = &offer.media[0];
    assert_eq!(audio.payload_types(), vec![96, 0, 9, 97, 101, 98, 99]);
    let events: Vec<(u8, u32)> = audio
        .telephone_events()
        .iter()
        .map(|t| (t.payload_type, t.clock_rate))
        .collect();
    assert_eq!(events, vec![(101, 48000), (98, 8000), (99, 16000)]);
    assert_eq!(audio.fmtp(96), Some("useinbandfec=1"));
    assert!(audio.rtcp_mux());
    assert_eq!(audio.ptime(), Some(20));
    assert_eq!(audio.direction(), Some(Direction::SendRecv));
    assert_eq!(offer.origin.username, "tandem");
    assert_eq!(
        SessionDescription::parse(&offer.to_string()).as_ref(),
        Ok(&offer)
    );

    // Offer → answer → negotiated, end to end.
    let caps = pcmu_pcma_caps();
    let ans = answer_to(&offer, &caps);
    let streams = negotiated(&offer, &ans).unwrap_or_default();
    let s = &streams[0];
    assert_eq!(s.codec.as_ref().map(|c| c.encoding.as_str()), Some("PCMU"));
    assert_eq!(s.telephone_event.as_ref().map(|t| t.payload_type), Some(98));
    assert!(s.rtcp_mux);
    assert_eq!(
        s.offerer.as_ref().and_then(MediaEndpoint::rtp),
        Some(std::net::SocketAddr::new(ip("192.0.2.7"), 20000))
    );
}

#[test]
fn builder_rejects_nonsense() {
    let none = OfferBuilder::new(ip("192.0.2.7"), 20000).build();
    assert_eq!(
        none.err().map(|e| e.reason()),
        Some("offer needs at least one codec")
    );
    let bad = OfferBuilder::new(ip("192.0.2.7"), 20000)
        .codec(LocalCodec::new("PC MU", 8000, 1))
        .build();
    assert_eq!(bad.err().map(|e| e.reason()), Some("bad codec name"));
    let v6 = OfferBuilder::new(IpAddr::V6(Ipv6Addr::LOCALHOST), 20000)
        .codec(LocalCodec::new("PCMA", 8000, 1))
        .direction(Direction::SendOnly)
        .build();
    assert_eq!(
        v6.as_ref().map(|o| o.to_string()),
        Ok(crlf(
            "v=0\no=- 1 1 IN IP6 ::1\ns=-\nc=IN IP6 ::1\nt=0 0\nm=audio 20000 RTP/AVP 8\na=rtpmap:8 PCMA/8000\na=sendonly\n"
        ))
    );
}
