//! tandem's conference mixer engine — sans-IO.
//!
//! A [`Conference`] takes RTP packets ([`Conference::push_rtp`]) and, once
//! per tick ([`Conference::tick`]), returns the packet each participant is
//! to be sent. Sockets and timers live in the node's driver.
//!
//! - [`conference`]: participants, speaker selection, N-1 and shared mixes.
//! - [`jitter`]: per-participant reordering and loss detection.
//! - [`speakers`]: loudest-N selection with hysteresis.
//! - [`kernel`]: the vectorisable add/subtract/saturate loops.
//! - [`node`]: the mixer node — the node side of `proto`, its threads and
//!   sockets (`Mixer::start`).
//! - [`prompt`]: announcements, music and tones, and their players.
//! - [`recorder`]: writes the mix to a WAV file from its own thread.

pub mod conference;
pub mod jitter;
pub mod kernel;
pub mod node;
pub mod prompt;
pub mod recorder;
pub mod speakers;

pub use conference::{
    Conference, ConferenceConfig, ConferenceStats, ConfigError, Flags, Options, Output, Outputs,
    ParticipantConfig, ParticipantId, ParticipantStats, PushError,
};
pub use node::{Mixer, MixerConfig, MixerHandle};
pub use prompt::{Player, Prompt, PromptError};
pub use recorder::{RecordError, Recorder, RecordingSummary};
