//! The configuration file (TOML). Every key has a default, so an empty file
//! — or none — is a working configuration; [`DEFAULT_TOML`] documents them
//! and a test keeps it equal to [`Config::default`].

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use serde::Deserialize;

/// The default configuration, with what each key means. `tandem config`
/// prints it.
pub const DEFAULT_TOML: &str = r#"# tandem configuration. Every key is optional; these are the defaults.

# Where the embedded store (SQLite, tandem.db) lives. --data-dir overrides.
data_dir = "tandem-data"
# A store URL instead of the embedded one, e.g. "postgres://user@host/tandem".
# store = ""

[sip]
# Listen addresses per transport. Use 0.0.0.0 to take phones on the LAN, and
# set media.ip (and sip.advertise) to this machine's LAN address.
udp = ["127.0.0.1:5060"]
tcp = ["127.0.0.1:5060"]
tls = []
ws = []
wss = []
# PEM certificate chain and key, needed by tls and wss listeners.
# cert = "/etc/tandem/cert.pem"
# key = "/etc/tandem/key.pem"
# The address written in Via and Contact when listening on 0.0.0.0.
# advertise = "192.0.2.10"

[api]
# HTTP: /metrics (Prometheus text format).
listen = "127.0.0.1:8080"

[control]
# Where media nodes (SBCs) connect to the brain.
listen = "127.0.0.1:5090"

[media]
# The address the SBC relays media on; phones send their audio here.
ip = "127.0.0.1"
# The UDP port range for media (an RTP/RTCP pair per call leg).
port_min = 30000
port_max = 39999
# Media worker threads of the in-process SBC.
workers = 1
# Call legs the in-process SBC carries at most.
max_streams = 10000
# No media on a leg for this long, seconds, and the SBC tells the brain; a
# call whose legs have all gone quiet (and is not on hold) is hung up and
# its CDR closed, instead of billing on to calls.max_call_secs.
timeout_secs = 30

[mixer]
# The in-process mixer's UDP ports for conference audio, which only SBCs
# send to: one per mixer thread, from this one up (0: any free port).
port = 29000
# Mixer threads.
workers = 1
# Conference participants the in-process mixer carries at most.
max_participants = 5000

[conference]
# Mixing rate of new rooms, Hz: 8000, 16000, 32000 or 48000. Each caller
# keeps their own codec and rate; the mixer converts.
rate = 16000
# Mixing period, ms: 10, 20 or 40.
tick_ms = 20
# How many talkers are mixed at once (the loudest; the rest are muted
# until one of them stops).
max_speakers = 3
# A short tone for everyone when someone joins or leaves.
join_leave_tones = true
# Most participants in one room; later callers get 486.
max_participants = 500
# Noise suppression on every caller's line (RNNoise: 0.16-0.27 ms of CPU per
# caller per 20 ms measured here, about 1% of a core per caller) and level
# control (quiet talkers raised, loud ones lowered; ~2 µs per 20 ms).
noise_suppression = false
level_control = false
# WAV files on the mixer's machine: played to a caller who is alone in a
# room, and looped while nobody else is there.
# alone_prompt = "/var/lib/tandem/prompts/en/alone.wav"
# wait_music = "/var/lib/tandem/prompts/music.wav"

[registrar]
# Registration expiry bounds, seconds (423 below the minimum).
min_expires = 60
max_expires = 3600
default_expires = 3600
# OPTIONS keep-alives to phones behind NAT, seconds (0: off).
keepalive_secs = 30
# Keep-alives in a row a phone must leave unanswered before its binding is
# dropped. Any answer, even an error such as 405, counts as alive.
keepalive_failures = 3

[calls]
# How long a callee may ring before the call is given up.
no_answer_secs = 60
# How long a callee may send nothing at all, not even 100 Trying, before the
# call is given up with 408: a phone that is off or out of reach is found out
# this soon instead of after the 32 s INVITE timeout.
no_response_secs = 10
# Longest an answered call may last before tandem hangs up both sides (0: no
# limit). A cap on what a hijacked account or a stuck call can cost.
max_call_secs = 14400
# Ask callers for digest credentials (407) before routing their INVITE.
authenticate = true
# New INVITEs per second from one source address (0: no limit), and how many
# may come at once; more get 503 with Retry-After. Raise it for a trunk or a
# proxy in front of tandem, which is one source for many callers.
invites_per_source = 20
invite_burst = 40
"#;

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub data_dir: PathBuf,
    pub store: Option<String>,
    pub sip: Sip,
    pub api: Api,
    pub control: Control,
    pub media: Media,
    pub mixer: Mixer,
    pub conference: Conference,
    pub registrar: Registrar,
    pub calls: Calls,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Sip {
    pub udp: Vec<SocketAddr>,
    pub tcp: Vec<SocketAddr>,
    pub tls: Vec<SocketAddr>,
    pub ws: Vec<SocketAddr>,
    pub wss: Vec<SocketAddr>,
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
    pub advertise: Option<IpAddr>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Api {
    pub listen: SocketAddr,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Control {
    pub listen: SocketAddr,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Media {
    pub ip: IpAddr,
    pub port_min: u16,
    pub port_max: u16,
    pub workers: u16,
    pub max_streams: u32,
    pub timeout_secs: u64,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Mixer {
    pub port: u16,
    pub workers: u16,
    pub max_participants: u32,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Conference {
    pub rate: u32,
    pub tick_ms: u16,
    pub max_speakers: u8,
    pub join_leave_tones: bool,
    pub max_participants: usize,
    pub noise_suppression: bool,
    pub level_control: bool,
    pub alone_prompt: Option<String>,
    pub wait_music: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Registrar {
    pub min_expires: u32,
    pub max_expires: u32,
    pub default_expires: u32,
    pub keepalive_secs: u64,
    pub keepalive_failures: u32,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Calls {
    pub no_answer_secs: u64,
    pub no_response_secs: u64,
    pub max_call_secs: u64,
    pub authenticate: bool,
    pub invites_per_source: u32,
    pub invite_burst: u32,
}

fn local(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

impl Default for Config {
    fn default() -> Self {
        Config {
            data_dir: PathBuf::from("tandem-data"),
            store: None,
            sip: Sip::default(),
            api: Api::default(),
            control: Control::default(),
            media: Media::default(),
            mixer: Mixer::default(),
            conference: Conference::default(),
            registrar: Registrar::default(),
            calls: Calls::default(),
        }
    }
}

impl Default for Sip {
    fn default() -> Self {
        Sip {
            udp: vec![local(5060)],
            tcp: vec![local(5060)],
            tls: vec![],
            ws: vec![],
            wss: vec![],
            cert: None,
            key: None,
            advertise: None,
        }
    }
}

impl Default for Api {
    fn default() -> Self {
        Api {
            listen: local(8080),
        }
    }
}

impl Default for Control {
    fn default() -> Self {
        Control {
            listen: local(5090),
        }
    }
}

impl Default for Media {
    fn default() -> Self {
        Media {
            ip: IpAddr::from([127, 0, 0, 1]),
            port_min: 30000,
            port_max: 39999,
            workers: 1,
            max_streams: 10_000,
            timeout_secs: 30,
        }
    }
}

impl Default for Mixer {
    fn default() -> Self {
        Mixer {
            port: 29000,
            workers: 1,
            max_participants: 5000,
        }
    }
}

impl Default for Conference {
    fn default() -> Self {
        Conference {
            rate: 16000,
            tick_ms: 20,
            max_speakers: 3,
            join_leave_tones: true,
            max_participants: 500,
            noise_suppression: false,
            level_control: false,
            alone_prompt: None,
            wait_music: None,
        }
    }
}

impl Default for Registrar {
    fn default() -> Self {
        Registrar {
            min_expires: 60,
            max_expires: 3600,
            default_expires: 3600,
            keepalive_secs: 30,
            keepalive_failures: 3,
        }
    }
}

impl Default for Calls {
    fn default() -> Self {
        Calls {
            no_answer_secs: 60,
            no_response_secs: 10,
            max_call_secs: 14_400,
            authenticate: true,
            invites_per_source: 20,
            invite_burst: 40,
        }
    }
}

impl Config {
    /// Reads `path`, or the defaults when there is none.
    pub fn load(path: Option<&Path>) -> anyhow::Result<Config> {
        let Some(path) = path else {
            return Ok(Config::default());
        };
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        let config: Config =
            toml::from_str(&text).with_context(|| format!("in {}", path.display()))?;
        config.check()?;
        Ok(config)
    }

    fn check(&self) -> anyhow::Result<()> {
        let m = &self.media;
        anyhow::ensure!(
            m.port_min < m.port_max && m.port_max - m.port_min >= 3,
            "media.port_min must be below media.port_max, with room for at least two port pairs"
        );
        anyhow::ensure!(m.timeout_secs >= 1, "media.timeout_secs must be at least 1");
        let c = &self.conference;
        anyhow::ensure!(
            [8000, 16000, 32000, 48000].contains(&c.rate),
            "conference.rate must be 8000, 16000, 32000 or 48000"
        );
        anyhow::ensure!(
            [10, 20, 40].contains(&c.tick_ms),
            "conference.tick_ms must be 10, 20 or 40"
        );
        anyhow::ensure!(
            c.max_speakers >= 1,
            "conference.max_speakers must be at least 1"
        );
        anyhow::ensure!(self.mixer.workers >= 1, "mixer.workers must be at least 1");
        anyhow::ensure!(
            self.registrar.min_expires <= self.registrar.max_expires,
            "registrar.min_expires is above registrar.max_expires"
        );
        anyhow::ensure!(
            self.registrar.keepalive_failures >= 1,
            "registrar.keepalive_failures must be at least 1"
        );
        anyhow::ensure!(
            (self.sip.tls.is_empty() && self.sip.wss.is_empty())
                || (self.sip.cert.is_some() && self.sip.key.is_some()),
            "sip.tls and sip.wss need sip.cert and sip.key"
        );
        Ok(())
    }

    pub fn keepalive(&self) -> Duration {
        Duration::from_secs(self.registrar.keepalive_secs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documented_defaults_are_the_defaults() {
        let parsed: Config = toml::from_str(DEFAULT_TOML).expect("the default file parses");
        assert_eq!(parsed, Config::default());
        let empty: Config = toml::from_str("").expect("an empty file is a configuration");
        assert_eq!(empty, Config::default());
    }

    #[test]
    fn unknown_keys_and_bad_values_are_refused() {
        assert!(toml::from_str::<Config>("[sip]\nudpp = []").is_err());
        assert!(toml::from_str::<Config>("[media]\nip = \"not an ip\"").is_err());
        let c: Config =
            toml::from_str("[media]\nport_min = 40000\nport_max = 30000").expect("parses");
        assert!(c.check().is_err());
        let c: Config = toml::from_str("[sip]\ntls = [\"127.0.0.1:5061\"]").expect("parses");
        assert!(c.check().is_err());
    }
}
