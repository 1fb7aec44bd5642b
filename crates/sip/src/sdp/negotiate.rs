//! RFC 3264 offer/answer: build an answer from an offer and local
//! capabilities, and read back what an offer/answer pair agreed on.

use std::net::{IpAddr, SocketAddr};

use super::SdpError;
use super::attrs::{Codec, Direction, EventRanges, RtpMap, TelephoneEvent};
use super::session::{Attribute, Connection, MediaDescription, Origin, SessionDescription, Timing};

/// A codec the answerer can handle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalCodec {
    /// Encoding name as in rtpmap (matched case-insensitively).
    pub encoding: String,
    pub clock_rate: u32,
    pub channels: u16,
    /// Our fmtp for it; when `None`, the answer echoes the offer's.
    pub fmtp: Option<String>,
}

impl LocalCodec {
    pub fn new(encoding: impl Into<String>, clock_rate: u32, channels: u16) -> Self {
        LocalCodec {
            encoding: encoding.into(),
            clock_rate,
            channels,
            fmtp: None,
        }
    }

    pub fn with_fmtp(mut self, fmtp: impl Into<String>) -> Self {
        self.fmtp = Some(fmtp.into());
        self
    }

    fn matches(&self, codec: &Codec) -> bool {
        codec.matches(&self.encoding, self.clock_rate, self.channels)
    }
}

/// Whose preference orders the codecs of an answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CodecOrder {
    /// Ours (the order of [`MediaCapabilities::codecs`]).
    #[default]
    Answerer,
    /// The order of the offer's m= line.
    Offerer,
}

/// What we accept for one media type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaCapabilities {
    /// The m= media type: audio, video, ...
    pub media: String,
    /// Transport protocols we can terminate (compared case-insensitively).
    pub protos: Vec<String>,
    /// In our preference order.
    pub codecs: Vec<LocalCodec>,
    /// RFC 4733 events we can send and receive; `None` if we cannot.
    pub telephone_events: Option<EventRanges>,
    /// a=ptime to put in the answer.
    pub ptime: Option<u32>,
    /// Whether we can multiplex RTCP on the RTP port (RFC 5761).
    pub rtcp_mux: bool,
}

impl MediaCapabilities {
    /// Plain RTP audio with `codecs`, DTMF events 0-15 plus flash (16),
    /// rtcp-mux, no ptime preference.
    pub fn audio(codecs: Vec<LocalCodec>) -> Self {
        MediaCapabilities {
            media: "audio".to_owned(),
            protos: vec!["RTP/AVP".to_owned()],
            codecs,
            telephone_events: Some(EventRanges::from_ranges(&[(0, 16)])),
            ptime: None,
            rtcp_mux: true,
        }
    }
}

/// Everything the answerer supports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Capabilities {
    /// One entry per media type; streams of other types are rejected.
    pub media: Vec<MediaCapabilities>,
    pub order: CodecOrder,
    /// The direction we want. For an offered sendrecv stream it is the
    /// answer's direction; otherwise it is combined with the offer's
    /// (RFC 3264 §6.1).
    pub direction: Direction,
    /// Answer at most this many codecs per stream (`Some(1)` suits a relay
    /// that must not see the codec change mid-call).
    pub max_codecs: Option<usize>,
}

impl Capabilities {
    /// Audio only, see [`MediaCapabilities::audio`]; our codec order, sendrecv.
    pub fn audio(codecs: Vec<LocalCodec>) -> Self {
        Capabilities {
            media: vec![MediaCapabilities::audio(codecs)],
            order: CodecOrder::Answerer,
            direction: Direction::SendRecv,
            max_codecs: None,
        }
    }
}

/// Who we are in the answer: o= fields and where we receive media.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalEndpoint {
    pub username: String,
    pub session_id: String,
    pub session_version: u64,
    pub session_name: String,
    pub address: IpAddr,
    /// Our RTP port for each m= line of the offer, by index. A stream whose
    /// entry is missing or 0 is rejected.
    pub ports: Vec<u16>,
}

impl LocalEndpoint {
    pub fn new(address: IpAddr, ports: Vec<u16>) -> Self {
        LocalEndpoint {
            username: "-".to_owned(),
            session_id: "1".to_owned(),
            session_version: 1,
            session_name: "-".to_owned(),
            address,
            ports,
        }
    }
}

/// Build the RFC 3264 answer to `offer`: one m= line per offered one, in
/// the same order; streams we cannot take get port 0.
pub fn answer(
    offer: &SessionDescription,
    caps: &Capabilities,
    local: &LocalEndpoint,
) -> Result<SessionDescription, SdpError> {
    let mut media = Vec::with_capacity(offer.media.len());
    for (index, offered) in offer.media.iter().enumerate() {
        let port = local.ports.get(index).copied().unwrap_or(0);
        media.push(answer_media(offer, index, offered, caps, port)?);
    }
    Ok(SessionDescription {
        origin: Origin {
            username: local.username.clone(),
            session_id: local.session_id.clone(),
            session_version: local.session_version,
            addr_type: super::AddrType::of(local.address),
            address: local.address.to_string(),
        },
        session_name: local.session_name.clone(),
        information: None,
        uri: None,
        emails: Vec::new(),
        phones: Vec::new(),
        connection: Some(Connection::new(local.address)),
        bandwidths: Vec::new(),
        timings: vec![Timing {
            start: 0,
            stop: 0,
            repeats: Vec::new(),
        }],
        time_zones: None,
        key: None,
        attributes: Vec::new(),
        media,
    })
}

/// RFC 3264 §6: a rejected stream keeps media and proto, has port 0 and at
/// least one format.
fn rejected(offered: &MediaDescription) -> MediaDescription {
    let mut media = MediaDescription::new(offered.media.clone(), 0, offered.proto.clone());
    media.formats = vec![
        offered
            .formats
            .first()
            .cloned()
            .unwrap_or_else(|| "0".to_owned()),
    ];
    media
}

fn answer_media(
    offer: &SessionDescription,
    index: usize,
    offered: &MediaDescription,
    caps: &Capabilities,
    port: u16,
) -> Result<MediaDescription, SdpError> {
    let fits = |m: &&MediaCapabilities| {
        m.media.eq_ignore_ascii_case(&offered.media)
            && m.protos
                .iter()
                .any(|p| p.eq_ignore_ascii_case(&offered.proto))
    };
    let Some(mcaps) = caps.media.iter().find(fits) else {
        return Ok(rejected(offered));
    };
    if offered.port == 0 || port == 0 {
        return Ok(rejected(offered));
    }
    if offer.media_connection(index).is_none() {
        return Err(SdpError::media(index, "offer has no connection address"));
    }

    let offered_codecs: Vec<Codec> = offered
        .codecs()
        .into_iter()
        .filter(|c| !c.is_auxiliary())
        .collect();
    let pairs: Vec<(&Codec, &LocalCodec)> = match caps.order {
        CodecOrder::Answerer => mcaps
            .codecs
            .iter()
            .filter_map(|local| {
                let codec = offered_codecs.iter().find(|c| local.matches(c))?;
                Some((codec, local))
            })
            .collect(),
        CodecOrder::Offerer => offered_codecs
            .iter()
            .filter_map(|codec| {
                let local = mcaps.codecs.iter().find(|l| l.matches(codec))?;
                Some((codec, local))
            })
            .collect(),
    };
    let mut chosen: Vec<(&Codec, &LocalCodec)> = Vec::with_capacity(pairs.len());
    for (codec, local) in pairs {
        if !chosen
            .iter()
            .any(|(c, _)| c.payload_type == codec.payload_type)
        {
            chosen.push((codec, local));
        }
    }
    if let Some(max) = caps.max_codecs {
        chosen.truncate(max.max(1));
    }
    let Some(first_clock) = chosen.first().map(|(c, _)| c.clock_rate) else {
        return Ok(rejected(offered));
    };

    let telephone_event = mcaps.telephone_events.as_ref().and_then(|ours| {
        let offered_events = offered.telephone_events();
        // RFC 4733 §2.1: events use the clock of the audio they go with.
        let pick = offered_events
            .iter()
            .find(|t| t.clock_rate == first_clock)
            .or_else(|| offered_events.iter().find(|t| t.clock_rate == 8000))
            .or_else(|| offered_events.first())?;
        let events = pick.events.intersection(ours);
        if events.is_empty() {
            return None;
        }
        Some(TelephoneEvent {
            payload_type: pick.payload_type,
            clock_rate: pick.clock_rate,
            events,
        })
    });

    let mut media = MediaDescription::new(offered.media.clone(), port, offered.proto.clone());
    for (codec, local) in &chosen {
        let pt = codec.payload_type;
        media.formats.push(pt.to_string());
        let map = RtpMap {
            payload_type: pt,
            encoding: codec.encoding.clone(),
            clock_rate: codec.clock_rate,
            channels: (codec.channels != 1).then_some(codec.channels),
        };
        media
            .attributes
            .push(Attribute::value("rtpmap", map.to_string()));
        if let Some(fmtp) = local.fmtp.as_ref().or(codec.fmtp.as_ref()) {
            media
                .attributes
                .push(Attribute::value("fmtp", format!("{pt} {fmtp}")));
        }
    }
    if let Some(te) = &telephone_event {
        let pt = te.payload_type;
        media.formats.push(pt.to_string());
        media.attributes.push(Attribute::value(
            "rtpmap",
            format!("{pt} telephone-event/{}", te.clock_rate),
        ));
        media
            .attributes
            .push(Attribute::value("fmtp", format!("{pt} {}", te.events)));
    }
    if let Some(ptime) = mcaps.ptime {
        media
            .attributes
            .push(Attribute::value("ptime", ptime.to_string()));
    }
    if offered.rtcp_mux() && mcaps.rtcp_mux {
        media.attributes.push(Attribute::flag("rtcp-mux"));
    }
    // We may send only if the offerer receives (not held, RFC 2543 style
    // included) and receive only if it sends; within that, our wish rules.
    let offered_direction = offer.media_direction(index);
    let direction = Direction::from_parts(
        !offer.is_on_hold(index) && caps.direction.sends(),
        offered_direction.sends() && caps.direction.receives(),
    );
    media.set_direction(direction);
    Ok(media)
}

/// Where one side of a stream receives RTP and RTCP.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaEndpoint {
    /// The c= address (an IP or a domain name).
    pub address: String,
    pub rtp_port: u16,
    /// a=rtcp's address if it had one, else the c= address.
    pub rtcp_address: String,
    /// rtcp-mux: the RTP port; else a=rtcp's port, else RTP + 1.
    pub rtcp_port: u16,
}

impl MediaEndpoint {
    pub fn rtp(&self) -> Option<SocketAddr> {
        let ip: IpAddr = self.address.parse().ok()?;
        Some(SocketAddr::new(ip, self.rtp_port))
    }

    pub fn rtcp(&self) -> Option<SocketAddr> {
        let ip: IpAddr = self.rtcp_address.parse().ok()?;
        Some(SocketAddr::new(ip, self.rtcp_port))
    }
}

/// What an offer/answer pair agreed on for one m= line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NegotiatedStream {
    pub index: usize,
    pub media: String,
    pub proto: String,
    /// Both sides gave a non-zero port.
    pub accepted: bool,
    /// The first codec of the answer that the offer had too, as the answer
    /// describes it: the offerer sends with this payload type.
    pub codec: Option<Codec>,
    /// The offer's payload type for the same codec: the answerer sends with
    /// it (RFC 3264 §6.1 lets the two differ).
    pub offer_payload_type: Option<u8>,
    /// The answer's telephone-event format, if the offer had one too.
    pub telephone_event: Option<TelephoneEvent>,
    pub offer_direction: Direction,
    pub answer_direction: Direction,
    /// Where the offerer receives (the answerer sends here).
    pub offerer: Option<MediaEndpoint>,
    /// Where the answerer receives (the offerer sends here).
    pub answerer: Option<MediaEndpoint>,
    /// Both sides asked for rtcp-mux.
    pub rtcp_mux: bool,
    /// The answer's a=ptime, else the offer's.
    pub ptime: Option<u32>,
    /// The offerer holds the stream: sendonly/inactive, or c=0.0.0.0.
    pub offerer_holds: bool,
    /// The answerer holds the stream.
    pub answerer_holds: bool,
}

impl NegotiatedStream {
    /// Either side holds the stream.
    pub fn on_hold(&self) -> bool {
        self.offerer_holds || self.answerer_holds
    }
}

/// Read what `offer` and its `answer` agreed on, per m= line: what an SBC
/// needs to relay or transcode the streams.
pub fn negotiated(
    offer: &SessionDescription,
    answer: &SessionDescription,
) -> Result<Vec<NegotiatedStream>, SdpError> {
    if offer.media.len() != answer.media.len() {
        let index = offer.media.len().min(answer.media.len());
        return Err(SdpError::media(
            index,
            "answer has a different number of m= lines",
        ));
    }
    let mut streams = Vec::with_capacity(offer.media.len());
    for (index, (o, a)) in offer.media.iter().zip(&answer.media).enumerate() {
        if !o.media.eq_ignore_ascii_case(&a.media) {
            return Err(SdpError::media(index, "answer changed the media type"));
        }
        let accepted = o.port != 0 && a.port != 0;
        let mut stream = NegotiatedStream {
            index,
            media: a.media.clone(),
            proto: a.proto.clone(),
            accepted,
            codec: None,
            offer_payload_type: None,
            telephone_event: None,
            offer_direction: offer.media_direction(index),
            answer_direction: answer.media_direction(index),
            offerer: None,
            answerer: None,
            rtcp_mux: o.rtcp_mux() && a.rtcp_mux(),
            ptime: a.ptime().or_else(|| o.ptime()),
            offerer_holds: false,
            answerer_holds: false,
        };
        if accepted {
            if o.is_rtp() {
                let (codec, offer_pt) =
                    first_common_codec(o, a).ok_or(SdpError::media(index, "no common codec"))?;
                stream.codec = Some(codec);
                stream.offer_payload_type = Some(offer_pt);
                if o.telephone_event().is_some() {
                    stream.telephone_event = a.telephone_event();
                }
            }
            stream.offerer = Some(endpoint(offer, index, stream.rtcp_mux)?);
            stream.answerer = Some(endpoint(answer, index, stream.rtcp_mux)?);
            stream.offerer_holds = offer.is_on_hold(index);
            stream.answerer_holds = answer.is_on_hold(index);
        }
        streams.push(stream);
    }
    Ok(streams)
}

/// The answer's first real codec that the offer also has — by payload type
/// when both agree on what it means, else by name, clock and channels. A
/// stream of events or comfort noise only (RFC 4317 §2.4) falls back to its
/// first common format.
fn first_common_codec(offer: &MediaDescription, answer: &MediaDescription) -> Option<(Codec, u8)> {
    let offered = offer.codecs();
    let answered = answer.codecs();
    let common = |codec: &Codec| {
        let same = |o: &&Codec| o.matches(&codec.encoding, codec.clock_rate, codec.channels);
        let by_pt = offered
            .iter()
            .filter(|o| o.payload_type == codec.payload_type)
            .find(same);
        by_pt
            .or_else(|| offered.iter().find(same))
            .map(|o| o.payload_type)
    };
    let real = answered.iter().filter(|c| !c.is_auxiliary());
    let auxiliary = answered.iter().filter(|c| c.is_auxiliary());
    real.chain(auxiliary)
        .find_map(|codec| Some((codec.clone(), common(codec)?)))
}

fn endpoint(
    sdp: &SessionDescription,
    index: usize,
    rtcp_mux: bool,
) -> Result<MediaEndpoint, SdpError> {
    let missing = SdpError::media(index, "no connection address");
    let address = sdp.media_connection(index).ok_or(missing.clone())?;
    let media = sdp.media.get(index).ok_or(missing)?;
    let rtcp = media.rtcp();
    let rtcp_port = if rtcp_mux {
        media.port
    } else {
        rtcp.as_ref().map_or(media.port.wrapping_add(1), |r| r.port)
    };
    let rtcp_address = rtcp
        .and_then(|r| r.address)
        .map_or_else(|| address.address.clone(), |(_, a)| a);
    Ok(MediaEndpoint {
        address: address.address.clone(),
        rtp_port: media.port,
        rtcp_address,
        rtcp_port,
    })
}
