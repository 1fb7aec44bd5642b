//! SDP on its way through the B2BUA: what each side's description tells
//! the SBC, and the description rewritten for the other side so that its
//! media goes to the SBC.
//!
//! One stream per call is relayed: the first m= line. Further streams
//! (video, a second audio) are disabled (port 0) in what the other side
//! sees, so its answer rejects them and nobody sends media we do not relay.

use std::net::{IpAddr, SocketAddr};

use proto::snapshot::{LegId, LegSpec, LocalEndpoint, PayloadType, RangeId, Rtcp};
use sip::Message;
use sip::sdp::{AnchorOptions, SessionDescription};

/// What one side said about where and how it receives media.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct SideMedia {
    /// Where it receives RTP; `None` until it has said, or while it holds
    /// the RFC 2543 way (c=0.0.0.0).
    pub remote: Option<SocketAddr>,
    pub codecs: Vec<PayloadType>,
    pub telephone_event: Option<u8>,
    pub rtcp_mux: bool,
    /// It holds the stream (sendonly, inactive, or c=0.0.0.0).
    pub held: bool,
}

/// The SDP body of a message, if it has one. A body of another type is
/// no SDP (and none of our business).
pub(crate) fn sdp_of(msg: &Message) -> Result<Option<SessionDescription>, u16> {
    if msg.body().is_empty() {
        return Ok(None);
    }
    let is_sdp = msg.content_type().is_none_or(|ct| {
        ct.split(';')
            .next()
            .is_some_and(|m| m.trim().eq_ignore_ascii_case("application/sdp"))
    });
    if !is_sdp {
        return Ok(None);
    }
    let text = std::str::from_utf8(msg.body()).map_err(|_| 400u16)?;
    SessionDescription::parse(text)
        .map(Some)
        .map_err(|e| e.sip_status())
}

/// Reads stream 0 of a description. An address of 0.0.0.0 or port 0
/// leaves `remote` at `previous` (hold keeps the SBC's idea of the peer).
pub(crate) fn learn(sdp: &SessionDescription, previous: Option<SocketAddr>) -> SideMedia {
    let Some(m) = sdp.media.first() else {
        return SideMedia {
            remote: previous,
            ..SideMedia::default()
        };
    };
    let remote = sdp
        .media_connection(0)
        .and_then(|c| c.ip())
        .filter(|ip| !ip.is_unspecified() && m.port != 0)
        .map(|ip| SocketAddr::new(ip, m.port))
        .or(previous);
    let codecs = m
        .codecs()
        .into_iter()
        .filter(|c| !c.is_telephone_event())
        .map(|c| PayloadType {
            pt: c.payload_type,
            name: c.encoding,
            clock_rate: c.clock_rate,
            channels: u8::try_from(c.channels).unwrap_or(1),
        })
        .collect();
    SideMedia {
        remote,
        codecs,
        telephone_event: m.telephone_event().map(|t| t.payload_type),
        rtcp_mux: m.rtcp_mux(),
        held: sdp.is_on_hold(0),
    }
}

/// `sdp` as the other side must see it: the SBC's `addr` and `port`
/// (the port facing that side) on stream 0, other streams disabled.
pub(crate) fn rewrite(sdp: &SessionDescription, addr: IpAddr, port: u16) -> Result<String, u16> {
    let mut out = sdp.clone();
    for m in out.media.iter_mut().skip(1) {
        m.port = 0;
    }
    let ports = vec![port; out.media.len()];
    out.anchor(addr, &ports, &AnchorOptions::default())
        .map_err(|e| e.sip_status())?;
    Ok(out.to_string())
}

/// One leg of the call's snapshot.
pub(crate) fn leg_spec(
    leg: LegId,
    peer: LegId,
    range: RangeId,
    port: u16,
    mine: &SideMedia,
    theirs: &SideMedia,
) -> LegSpec {
    // rtcp-mux only when both sides asked for it: the SDP passes through,
    // so the answerer can only accept it if the offerer offered it.
    let rtcp = if mine.rtcp_mux && theirs.rtcp_mux {
        Rtcp::Mux
    } else {
        Rtcp::Port(port.saturating_add(1))
    };
    // Until a side has described its codecs it gets what was offered to
    // it, which is the other side's list (the SDP is passed through).
    let codecs = if mine.codecs.is_empty() {
        &theirs.codecs
    } else {
        &mine.codecs
    };
    LegSpec {
        leg_id: leg,
        local: LocalEndpoint {
            range_id: range,
            rtp_port: port,
            rtcp,
        },
        expected_remote: mine.remote,
        // Phones behind NAT send from somewhere else than their SDP says.
        latch: true,
        payload_types: codecs.clone(),
        telephone_event_pt: mine.telephone_event.or(theirs.telephone_event),
        relay_to: Some(peer),
        continuation: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const OFFER: &str = "v=0\r\no=alice 1 1 IN IP4 192.0.2.10\r\ns=-\r\nc=IN IP4 192.0.2.10\r\nt=0 0\r\n\
m=audio 4000 RTP/AVP 0 8 101\r\na=rtpmap:101 telephone-event/8000\r\na=rtcp-mux\r\n\
m=video 4002 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\n";

    #[test]
    fn learns_stream_zero() {
        let sdp = SessionDescription::parse(OFFER).expect("sdp");
        let m = learn(&sdp, None);
        assert_eq!(m.remote, Some("192.0.2.10:4000".parse().expect("addr")));
        assert_eq!(
            m.codecs.iter().map(|c| c.pt).collect::<Vec<_>>(),
            vec![0, 8]
        );
        assert_eq!(m.telephone_event, Some(101));
        assert!(m.rtcp_mux);
    }

    #[test]
    fn hold_keeps_the_previous_remote() {
        let held = OFFER.replace("c=IN IP4 192.0.2.10", "c=IN IP4 0.0.0.0");
        let sdp = SessionDescription::parse(&held).expect("sdp");
        let before: SocketAddr = "192.0.2.10:4000".parse().expect("addr");
        assert_eq!(learn(&sdp, Some(before)).remote, Some(before));
    }

    #[test]
    fn rewrite_points_at_the_sbc_and_drops_extra_streams() {
        let sdp = SessionDescription::parse(OFFER).expect("sdp");
        let text = rewrite(&sdp, IpAddr::from([10, 0, 0, 5]), 30000).expect("rewrite");
        let out = SessionDescription::parse(&text).expect("reparse");
        assert_eq!(out.media[0].port, 30000);
        assert_eq!(out.media[1].port, 0);
        assert_eq!(
            out.media_connection(0).and_then(|c| c.ip()),
            Some(IpAddr::from([10, 0, 0, 5]))
        );
        assert!(!text.contains("192.0.2.10"), "{text}");
    }
}
