//! Rewrites for media anchoring: the SBC relays media, so the description
//! passed on to the other leg must name the SBC's address and ports instead
//! of the endpoint's, and must not carry the endpoint's ICE candidates.

use std::net::IpAddr;

use super::SdpError;
use super::attrs::{Direction, RtcpAttribute};
use super::session::{AddrType, Attribute, Connection, SessionDescription};

/// How [`SessionDescription::anchor`] treats what it does not rewrite.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AnchorOptions {
    /// Keep a=candidate, a=ice-* and friends. Off by default: the candidates
    /// name the endpoint's addresses, which the other leg must not use.
    pub keep_ice: bool,
    /// Leave the o= version alone (by default it is bumped, since the
    /// description changed).
    pub keep_version: bool,
}

fn is_ice_attribute(attribute: &Attribute) -> bool {
    let name = attribute.name.to_ascii_lowercase();
    name.starts_with("ice-")
        || matches!(
            name.as_str(),
            "candidate" | "remote-candidates" | "end-of-candidates"
        )
}

impl SessionDescription {
    /// Point every address at `addr`: the session c=, every media c=, the
    /// o= address and the address of every a=rtcp that has one. A session
    /// c= is added if some active stream had no address of its own.
    pub fn rewrite_connection(&mut self, addr: IpAddr) {
        let addr_type = AddrType::of(addr);
        self.origin.addr_type = addr_type;
        self.origin.address = addr.to_string();

        let needs_session_connection = self
            .media
            .iter()
            .any(|m| m.connections.is_empty() && m.port != 0);
        if self.connection.is_some() || needs_session_connection {
            self.connection = Some(Connection::new(addr));
        }
        for media in &mut self.media {
            if !media.connections.is_empty() {
                media.connections = vec![Connection::new(addr)];
            }
            if let Some(mut rtcp) = media.rtcp()
                && rtcp.address.is_some()
            {
                rtcp.address = Some((addr_type, addr.to_string()));
                media.set_attribute("rtcp", Some(rtcp.to_string()));
            }
        }
    }

    /// Increase the o= session version, as RFC 3264 §8 requires of every
    /// changed description in a dialog.
    pub fn bump_version(&mut self) {
        self.origin.session_version = self.origin.session_version.wrapping_add(1);
    }

    /// Set the RTP port of media `index`. An existing a=rtcp follows it: the
    /// same port under rtcp-mux, else the next one (or is dropped when the
    /// stream is disabled or there is no next port).
    pub fn set_media_port(&mut self, index: usize, port: u16) -> Result<(), SdpError> {
        let media = self
            .media
            .get_mut(index)
            .ok_or(SdpError::media(index, "no such m= line"))?;
        media.port = port;
        if let Some(mut rtcp) = media.rtcp() {
            let rtcp_port = if media.rtcp_mux() {
                Some(port)
            } else {
                port.checked_add(1)
            };
            match rtcp_port.filter(|_| port != 0) {
                Some(rtcp_port) => {
                    rtcp.port = rtcp_port;
                    media.set_attribute("rtcp", Some(rtcp.to_string()));
                }
                None => media.remove_attribute("rtcp"),
            }
        }
        Ok(())
    }

    /// Set (or, with `None`, remove) a=rtcp on media `index`.
    pub fn set_media_rtcp(
        &mut self,
        index: usize,
        rtcp: Option<RtcpAttribute>,
    ) -> Result<(), SdpError> {
        let media = self
            .media
            .get_mut(index)
            .ok_or(SdpError::media(index, "no such m= line"))?;
        match rtcp {
            Some(rtcp) => media.set_attribute("rtcp", Some(rtcp.to_string())),
            None => media.remove_attribute("rtcp"),
        }
        Ok(())
    }

    /// Remove ICE (RFC 8445/8839) attributes at session and media level.
    pub fn strip_ice(&mut self) {
        self.attributes.retain(|a| !is_ice_attribute(a));
        for media in &mut self.media {
            media.attributes.retain(|a| !is_ice_attribute(a));
        }
    }

    /// Whether media `index` uses ICE (candidates or credentials).
    pub fn uses_ice(&self, index: usize) -> bool {
        self.attributes.iter().any(is_ice_attribute)
            || self
                .media
                .get(index)
                .is_some_and(|m| m.attributes.iter().any(is_ice_attribute))
    }

    /// Anchor media at the SBC: `addr` everywhere, `ports[i]` for active
    /// stream `i` (disabled streams keep port 0), a=rtcp following, ICE
    /// stripped and the version bumped unless `options` say otherwise.
    ///
    /// A stream held the RFC 2543 way (c=0.0.0.0, no ICE) gets the
    /// equivalent direction attribute instead, since its address is about
    /// to become a real one.
    pub fn anchor(
        &mut self,
        addr: IpAddr,
        ports: &[u16],
        options: &AnchorOptions,
    ) -> Result<(), SdpError> {
        for index in 0..self.media.len() {
            let active = self.media.get(index).is_some_and(|m| m.port != 0);
            if !active {
                continue;
            }
            let port = *ports
                .get(index)
                .ok_or(SdpError::media(index, "no relay port for stream"))?;
            let zero_hold = self
                .media_connection(index)
                .is_some_and(Connection::is_unspecified)
                && !self.uses_ice(index);
            if zero_hold {
                let direction = self.media_direction(index);
                let held = Direction::from_parts(direction.sends(), false);
                if let Some(media) = self.media.get_mut(index) {
                    media.set_direction(held);
                }
            }
            self.set_media_port(index, port)?;
        }
        self.rewrite_connection(addr);
        if !options.keep_ice {
            self.strip_ice();
        }
        if !options.keep_version {
            self.bump_version();
        }
        Ok(())
    }
}
