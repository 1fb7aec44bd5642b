//! The bench INVITE, shared by `benches/parse.rs` and the instruction-count
//! harness (`examples/instr_count.rs`).

use bytes::Bytes;

const SDP: &str = "v=0\r\n\
o=alice 2890844526 2890844526 IN IP4 192.0.2.101\r\n\
s=-\r\n\
c=IN IP4 192.0.2.101\r\n\
t=0 0\r\n\
m=audio 49170 RTP/AVP 0 8 101\r\n\
a=rtpmap:0 PCMU/8000\r\n\
a=rtpmap:8 PCMA/8000\r\n\
a=rtpmap:101 telephone-event/8000\r\n\
a=fmtp:101 0-16\r\n\
a=ptime:20\r\n\
a=sendrecv\r\n";

/// 962 bytes: two Vias, a Record-Route, display names, tags, Contact with
/// parameters, Allow, Supported, User-Agent and a 240-byte SDP body.
pub fn invite() -> Bytes {
    let head = "INVITE sip:bob@biloxi.example.com SIP/2.0\r\n\
Via: SIP/2.0/UDP proxy.atlanta.example.com:5060;branch=z9hG4bK2d4790.1\r\n\
Via: SIP/2.0/UDP 192.0.2.101:5060;received=198.51.100.7;rport=40312;branch=z9hG4bK74bf9\r\n\
Record-Route: <sip:proxy.atlanta.example.com;lr>\r\n\
Max-Forwards: 69\r\n\
From: \"Alice Liddell\" <sip:alice@atlanta.example.com>;tag=9fxced76sl\r\n\
To: Bob <sip:bob@biloxi.example.com>\r\n\
Call-ID: 3848276298220188511@atlanta.example.com\r\n\
CSeq: 31862 INVITE\r\n\
Contact: \"Alice Liddell\" <sip:alice@192.0.2.101:5060;transport=udp>;expires=3600\r\n\
Allow: INVITE, ACK, CANCEL, BYE, OPTIONS, INFO, UPDATE, REFER, NOTIFY\r\n\
Supported: replaces, timer\r\n\
User-Agent: Softphone/5.2.1 (Linux)\r\n\
Content-Type: application/sdp\r\n";
    let text = format!("{head}Content-Length: {}\r\n\r\n{SDP}", SDP.len());
    Bytes::from(text)
}
