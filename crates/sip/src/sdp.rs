//! SDP (RFC 4566) and offer/answer (RFC 3264).
//!
//! - [`SessionDescription::parse`] reads a description (CRLF or bare LF) into a
//!   model that keeps every line; `to_string()` writes it back with CRLF, byte
//!   for byte when the input used the grammar's single spaces and order.
//! - Typed helpers read the attributes the B2BUA and the SBC care about:
//!   rtpmap (with RFC 3551 static payload types), fmtp, ptime, direction,
//!   rtcp (RFC 3605), rtcp-mux (RFC 5761), telephone-event (RFC 4733).
//! - [`SessionDescription::anchor`] and friends rewrite addresses and ports so
//!   media flows through an SBC.
//! - [`answer`] builds an RFC 3264 answer from an offer and local
//!   [`Capabilities`]; [`negotiated`] reads back what an offer/answer pair
//!   agreed on, per stream.
//! - [`OfferBuilder`] writes a fresh offer.
//!
//! Everything is sans-IO and never panics on input: bad input is an
//! [`SdpError`] carrying the line number and a short reason.

mod attrs;
mod builder;
mod negotiate;
mod rewrite;
mod session;

#[cfg(test)]
mod tests;

pub use attrs::{
    Codec, Direction, EventRanges, RtcpAttribute, RtpMap, TelephoneEvent, static_payload_type,
};
pub use builder::OfferBuilder;
pub use negotiate::{
    Capabilities, CodecOrder, LocalCodec, LocalEndpoint, MediaCapabilities, MediaEndpoint,
    NegotiatedStream, answer, negotiated,
};
pub use rewrite::AnchorOptions;
pub use session::{
    AddrType, Attribute, Bandwidth, Connection, MediaDescription, Origin, SessionDescription,
    Timing,
};

/// Why a description was refused. `Syntax` errors map to SIP 400, `Media`
/// (negotiation) errors to 488; [`SdpError::reason`] is a short phrase fit
/// for a SIP reason phrase or a Warning header.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SdpError {
    /// The text is not a valid description; `line` counts from 1.
    #[error("SDP line {line}: {reason}")]
    Syntax { line: usize, reason: &'static str },
    /// The description is valid but unusable for media stream `index`
    /// (counting m= lines from 0), or the offer/answer pair does not match.
    #[error("SDP media {index}: {reason}")]
    Media { index: usize, reason: &'static str },
}

impl SdpError {
    pub(crate) fn syntax(line: usize, reason: &'static str) -> Self {
        SdpError::Syntax { line, reason }
    }

    pub(crate) fn media(index: usize, reason: &'static str) -> Self {
        SdpError::Media { index, reason }
    }

    /// The short reason alone.
    pub fn reason(&self) -> &'static str {
        match self {
            SdpError::Syntax { reason, .. } | SdpError::Media { reason, .. } => reason,
        }
    }

    /// The line the error was found on, for syntax errors.
    pub fn line(&self) -> Option<usize> {
        match self {
            SdpError::Syntax { line, .. } => Some(*line),
            SdpError::Media { .. } => None,
        }
    }

    /// The SIP status a UA should answer with: 400 for a malformed body,
    /// 488 (Not Acceptable Here) for one we cannot negotiate.
    pub fn sip_status(&self) -> u16 {
        match self {
            SdpError::Syntax { .. } => 400,
            SdpError::Media { .. } => 488,
        }
    }
}

/// Fuzzing entry point: parse (when `data` is UTF-8), serialize, reparse.
///
/// Panics only if the parser and serializer disagree — a parsed description
/// must serialize to text that parses back to the same model, and that text
/// must be a fixed point of serialization. Runs the typed helpers too so
/// they are fuzzed along with the parser.
pub fn parse_fuzz(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(sdp) = SessionDescription::parse(text) else {
        return;
    };
    let written = sdp.to_string();
    let reparsed = SessionDescription::parse(&written);
    assert_eq!(reparsed.as_ref(), Ok(&sdp), "reparse differs:\n{written}");
    assert_eq!(sdp.to_string(), written);

    for (index, media) in sdp.media.iter().enumerate() {
        let _ = media.codecs();
        let _ = media.telephone_events();
        let _ = media.rtcp();
        let _ = media.ptime();
        let _ = sdp.media_direction(index);
        let _ = sdp.is_on_hold(index);
    }
    let caps = Capabilities::audio(vec![
        LocalCodec::new("PCMU", 8000, 1),
        LocalCodec::new("opus", 48000, 2),
    ]);
    let local = LocalEndpoint::new(std::net::Ipv4Addr::LOCALHOST.into(), vec![4000; 8]);
    if let Ok(ans) = answer(&sdp, &caps, &local) {
        let _ = negotiated(&sdp, &ans);
    }
    let mut anchored = sdp;
    let ports: Vec<u16> = (0..anchored.media.len()).map(|_| 30000).collect();
    let _ = anchored.anchor(
        std::net::Ipv4Addr::LOCALHOST.into(),
        &ports,
        &AnchorOptions::default(),
    );
    let rewritten = anchored.to_string();
    assert_eq!(
        SessionDescription::parse(&rewritten).as_ref(),
        Ok(&anchored)
    );
}
