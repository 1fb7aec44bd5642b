//! A fresh offer from scratch: one audio stream.

use std::net::IpAddr;

use super::SdpError;
use super::attrs::{Direction, EventRanges, RtpMap, static_payload_type};
use super::negotiate::LocalCodec;
use super::session::{
    AddrType, Attribute, Connection, MediaDescription, Origin, SessionDescription, Timing,
};

/// Builds an offer with one audio stream.
///
/// Codecs with an RFC 3551 static assignment get their static payload type;
/// the others get dynamic ones from 96 up. Telephone-event, when asked for,
/// is offered once per distinct codec clock rate (RFC 4733 wants the events
/// clocked like the audio), the first at payload type 101.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OfferBuilder {
    username: String,
    session_id: String,
    session_version: u64,
    session_name: String,
    address: IpAddr,
    port: u16,
    proto: String,
    codecs: Vec<LocalCodec>,
    telephone_events: Option<EventRanges>,
    ptime: Option<u32>,
    rtcp_mux: bool,
    direction: Direction,
}

impl OfferBuilder {
    /// An offer to receive audio at `address`:`port`, plain RTP, sendrecv.
    pub fn new(address: IpAddr, port: u16) -> Self {
        OfferBuilder {
            username: "-".to_owned(),
            session_id: "1".to_owned(),
            session_version: 1,
            session_name: "-".to_owned(),
            address,
            port,
            proto: "RTP/AVP".to_owned(),
            codecs: Vec::new(),
            telephone_events: None,
            ptime: None,
            rtcp_mux: false,
            direction: Direction::SendRecv,
        }
    }

    pub fn origin(
        mut self,
        username: impl Into<String>,
        session_id: impl Into<String>,
        session_version: u64,
    ) -> Self {
        self.username = username.into();
        self.session_id = session_id.into();
        self.session_version = session_version;
        self
    }

    pub fn session_name(mut self, name: impl Into<String>) -> Self {
        self.session_name = name.into();
        self
    }

    pub fn proto(mut self, proto: impl Into<String>) -> Self {
        self.proto = proto.into();
        self
    }

    /// Add a codec; the order of calls is the order of preference.
    pub fn codec(mut self, codec: LocalCodec) -> Self {
        self.codecs.push(codec);
        self
    }

    /// Offer RFC 4733 events.
    pub fn telephone_event(mut self, events: EventRanges) -> Self {
        self.telephone_events = Some(events);
        self
    }

    pub fn ptime(mut self, ms: u32) -> Self {
        self.ptime = Some(ms);
        self
    }

    pub fn rtcp_mux(mut self, on: bool) -> Self {
        self.rtcp_mux = on;
        self
    }

    pub fn direction(mut self, direction: Direction) -> Self {
        self.direction = direction;
        self
    }

    /// The offer. Fails without codecs, with a codec or session field that
    /// would not serialize as one valid line, or when dynamic payload types
    /// run out.
    pub fn build(self) -> Result<SessionDescription, SdpError> {
        if self.codecs.is_empty() {
            return Err(SdpError::media(0, "offer needs at least one codec"));
        }
        let token_ok = |s: &str| !s.is_empty() && !s.chars().any(char::is_whitespace);
        if !token_ok(&self.username) || !token_ok(&self.session_id) || !token_ok(&self.proto) {
            return Err(SdpError::media(0, "o= or m= field is not a token"));
        }
        if self.session_name.contains(['\r', '\n', '\0']) {
            return Err(SdpError::media(0, "session name has a line break"));
        }

        let mut used: Vec<u8> = Vec::new();
        let mut next_dynamic = 96u8;
        let mut take_dynamic = |used: &mut Vec<u8>, preferred: Option<u8>| -> Option<u8> {
            if let Some(pt) = preferred.filter(|pt| !used.contains(pt)) {
                used.push(pt);
                return Some(pt);
            }
            while next_dynamic <= 127 {
                let pt = next_dynamic;
                next_dynamic += 1;
                if !used.contains(&pt) {
                    used.push(pt);
                    return Some(pt);
                }
            }
            None
        };
        let out_of_pts = || SdpError::media(0, "out of dynamic payload types");

        let mut media = MediaDescription::new("audio", self.port, self.proto.clone());
        let mut clocks: Vec<u32> = Vec::new();
        let mut lines: Vec<Attribute> = Vec::new();
        for codec in &self.codecs {
            if codec.encoding.is_empty()
                || codec
                    .encoding
                    .contains(|c: char| c.is_whitespace() || c == '/')
            {
                return Err(SdpError::media(0, "bad codec name"));
            }
            let static_pt = (0..96u8).find(|&pt| {
                static_payload_type(pt).is_some_and(|(name, clock, channels)| {
                    name.eq_ignore_ascii_case(&codec.encoding)
                        && clock == codec.clock_rate
                        && channels == codec.channels
                        && !used.contains(&pt)
                })
            });
            let pt = match static_pt {
                Some(pt) => {
                    used.push(pt);
                    pt
                }
                None => take_dynamic(&mut used, None).ok_or_else(out_of_pts)?,
            };
            media.formats.push(pt.to_string());
            let map = RtpMap {
                payload_type: pt,
                encoding: codec.encoding.clone(),
                clock_rate: codec.clock_rate,
                channels: (codec.channels != 1).then_some(codec.channels),
            };
            lines.push(Attribute::value("rtpmap", map.to_string()));
            if let Some(fmtp) = &codec.fmtp {
                if fmtp.contains(['\r', '\n', '\0']) {
                    return Err(SdpError::media(0, "fmtp has a line break"));
                }
                lines.push(Attribute::value("fmtp", format!("{pt} {fmtp}")));
            }
            if !clocks.contains(&codec.clock_rate) {
                clocks.push(codec.clock_rate);
            }
        }
        if let Some(events) = &self.telephone_events {
            let mut preferred = Some(101);
            for clock in clocks {
                let pt = take_dynamic(&mut used, preferred.take()).ok_or_else(out_of_pts)?;
                media.formats.push(pt.to_string());
                lines.push(Attribute::value(
                    "rtpmap",
                    format!("{pt} telephone-event/{clock}"),
                ));
                if !events.is_empty() {
                    lines.push(Attribute::value("fmtp", format!("{pt} {events}")));
                }
            }
        }
        media.attributes = lines;
        if let Some(ptime) = self.ptime {
            media
                .attributes
                .push(Attribute::value("ptime", ptime.to_string()));
        }
        if self.rtcp_mux {
            media.attributes.push(Attribute::flag("rtcp-mux"));
        }
        media.set_direction(self.direction);

        Ok(SessionDescription {
            origin: Origin {
                username: self.username,
                session_id: self.session_id,
                session_version: self.session_version,
                addr_type: AddrType::of(self.address),
                address: self.address.to_string(),
            },
            session_name: self.session_name,
            information: None,
            uri: None,
            emails: Vec::new(),
            phones: Vec::new(),
            connection: Some(Connection::new(self.address)),
            bandwidths: Vec::new(),
            timings: vec![Timing {
                start: 0,
                stop: 0,
                repeats: Vec::new(),
            }],
            time_zones: None,
            key: None,
            attributes: Vec::new(),
            media: vec![media],
        })
    }
}
