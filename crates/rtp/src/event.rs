//! RFC 4733 telephone-events: the 4-byte payload and a tracker that turns a
//! stream of event packets into one report per key press.
//!
//! An event is identified by its RTP timestamp (the time it began); every
//! update and the (usually thrice) retransmitted end packet carry the same
//! timestamp with a growing duration.

use crate::WriteError;

/// Why an event payload was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
pub enum EventError {
    #[error("telephone-event payload shorter than 4 bytes")]
    TooShort,
}

/// The RFC 4733 §2.3 event payload.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct TelephoneEvent {
    /// Event code: 0–9, 10 `*`, 11 `#`, 12–15 A–D, 16 flash, others tones.
    pub event: u8,
    /// E bit: this is (a retransmission of) the final packet.
    pub end: bool,
    /// Power level in −dBm0, 0–63.
    pub volume: u8,
    /// Duration so far, in timestamp units.
    pub duration: u16,
}

impl TelephoneEvent {
    pub const LEN: usize = 4;

    /// Reads the first event of `payload`. Longer payloads are accepted:
    /// trailing bytes belong to RFC 2198 redundancy the caller unwraps.
    #[inline]
    pub fn parse(payload: &[u8]) -> Result<Self, EventError> {
        let b = payload.get(..4).ok_or(EventError::TooShort)?;
        Ok(TelephoneEvent {
            event: b[0],
            end: b[1] & 0x80 != 0,
            volume: b[1] & 0x3f,
            duration: u16::from_be_bytes([b[2], b[3]]),
        })
    }

    /// Writes the 4-byte payload; the reserved R bit is sent as zero.
    pub fn write(&self, buf: &mut [u8]) -> Result<usize, WriteError> {
        let b = buf
            .get_mut(..4)
            .ok_or(WriteError::BufferTooSmall { needed: 4 })?;
        b[0] = self.event;
        b[1] = (u8::from(self.end) << 7) | (self.volume & 0x3f);
        b[2..4].copy_from_slice(&self.duration.to_be_bytes());
        Ok(4)
    }
}

/// A DTMF key (RFC 4733 §3.2 events 0–16).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Key {
    Digit0,
    Digit1,
    Digit2,
    Digit3,
    Digit4,
    Digit5,
    Digit6,
    Digit7,
    Digit8,
    Digit9,
    Star,
    Pound,
    A,
    B,
    C,
    D,
    Flash,
}

impl Key {
    const ALL: [Key; 17] = [
        Key::Digit0,
        Key::Digit1,
        Key::Digit2,
        Key::Digit3,
        Key::Digit4,
        Key::Digit5,
        Key::Digit6,
        Key::Digit7,
        Key::Digit8,
        Key::Digit9,
        Key::Star,
        Key::Pound,
        Key::A,
        Key::B,
        Key::C,
        Key::D,
        Key::Flash,
    ];

    /// The key for an event code, `None` for non-DTMF events (tones etc.).
    pub fn from_event(code: u8) -> Option<Key> {
        Key::ALL.get(usize::from(code)).copied()
    }

    pub fn event_code(self) -> u8 {
        self as u8
    }

    /// `'0'..='9'`, `'*'`, `'#'`, `'A'..='D'`, and `'!'` for flash (the
    /// character SIP INFO and many IVRs use for hook flash).
    pub fn as_char(self) -> char {
        b"0123456789*#ABCD!"[self as usize] as char
    }

    pub fn from_char(c: char) -> Option<Key> {
        let code = b"0123456789*#ABCD!"
            .iter()
            .position(|&b| char::from(b) == c.to_ascii_uppercase())?;
        Key::from_event(code as u8)
    }
}

/// One key press, reported once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DigitEvent {
    pub key: Key,
    /// RTP timestamp at which the event began.
    pub timestamp: u32,
    /// Total duration in timestamp units (long events' segments summed).
    pub duration: u32,
    pub volume: u8,
    /// False when no end packet arrived and the event was closed because
    /// another began or [`EventTracker::finish`] was called.
    pub ended: bool,
}

impl DigitEvent {
    pub fn duration_ms(&self, clock_rate: u32) -> u32 {
        if clock_rate == 0 {
            return 0;
        }
        (u64::from(self.duration) * 1000 / u64::from(clock_rate)) as u32
    }
}

/// Up to two reports produced by one packet (the previous event, closed
/// unended, and the new one if it is already an end packet). No allocation.
#[derive(Debug, Clone, Default)]
pub struct DigitEvents {
    items: [Option<DigitEvent>; 2],
    next: usize,
}

impl DigitEvents {
    fn push(&mut self, e: Option<DigitEvent>) {
        if let Some(e) = e {
            if self.items[0].is_none() {
                self.items[0] = Some(e);
            } else {
                self.items[1] = Some(e);
            }
        }
    }
}

impl Iterator for DigitEvents {
    type Item = DigitEvent;

    fn next(&mut self) -> Option<DigitEvent> {
        while self.next < 2 {
            self.next += 1;
            if let Some(e) = self.items[self.next - 1].take() {
                return Some(e);
            }
        }
        None
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Current {
    /// Timestamp of the first segment: the event's identity when reported.
    start: u32,
    /// Timestamp of the segment now being updated.
    segment: u32,
    /// Duration of earlier segments of a long event.
    base: u32,
    /// Largest duration seen in this segment (updates may be reordered).
    seg_duration: u16,
    code: u8,
    volume: u8,
}

/// Turns RFC 4733 event packets into [`DigitEvent`]s: each event reported
/// once, on its first end packet; retransmitted end packets and late
/// updates are ignored; a lost end is recovered when the next event starts
/// or the driver calls [`finish`](Self::finish) (e.g. after a timeout).
#[derive(Debug, Clone, Default)]
pub struct EventTracker {
    current: Option<Current>,
    /// Segment timestamp and code of the last closed event, to drop its
    /// stragglers.
    last_done: Option<(u32, u8)>,
}

/// Serial-number "a is before b" for 32-bit RTP timestamps.
fn before(a: u32, b: u32) -> bool {
    (a.wrapping_sub(b) as i32) < 0
}

impl EventTracker {
    pub fn new() -> Self {
        Self::default()
    }

    /// Feeds one event packet: its RTP timestamp and decoded payload.
    pub fn on_packet(&mut self, timestamp: u32, ev: TelephoneEvent) -> DigitEvents {
        let mut out = DigitEvents::default();
        // Stragglers of an event already reported (retransmitted ends,
        // late updates) carry its timestamp or an older one. A different
        // code on the same timestamp is a new key from a sender that does
        // not advance the timestamp between events.
        if self.last_done.is_some_and(|(ts, code)| {
            (timestamp == ts && ev.event == code) || before(timestamp, ts)
        }) {
            return out;
        }
        match self.current {
            Some(ref mut cur) if cur.segment == timestamp && cur.code == ev.event => {
                cur.seg_duration = cur.seg_duration.max(ev.duration);
                cur.volume = ev.volume;
            }
            Some(cur) if before(timestamp, cur.segment) => return out,
            // RFC 4733 §2.5.1.3: a long event continues in a new segment
            // whose timestamp is where the previous one (0xFFFF long) ended.
            Some(ref mut cur)
                if cur.code == ev.event && timestamp.wrapping_sub(cur.segment) == 0xffff =>
            {
                cur.base += 0xffff;
                cur.segment = timestamp;
                cur.seg_duration = ev.duration;
                cur.volume = ev.volume;
            }
            _ => {
                out.push(self.close(false));
                self.current = Some(Current {
                    start: timestamp,
                    segment: timestamp,
                    base: 0,
                    seg_duration: ev.duration,
                    code: ev.event,
                    volume: ev.volume,
                });
            }
        }
        if ev.end {
            out.push(self.close(true));
        }
        out
    }

    /// Closes the event in progress, if any, reporting it unended. Call at
    /// the end of the stream or when no update came for a while.
    pub fn finish(&mut self) -> Option<DigitEvent> {
        self.close(false)
    }

    /// True while an event has started and not yet ended.
    pub fn in_progress(&self) -> Option<Key> {
        self.current.and_then(|c| Key::from_event(c.code))
    }

    fn close(&mut self, ended: bool) -> Option<DigitEvent> {
        let cur = self.current.take()?;
        self.last_done = Some((cur.segment, cur.code));
        Some(DigitEvent {
            key: Key::from_event(cur.code)?,
            timestamp: cur.start,
            duration: cur.base + u32::from(cur.seg_duration),
            volume: cur.volume,
            ended,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(event: u8, end: bool, duration: u16) -> TelephoneEvent {
        TelephoneEvent {
            event,
            end,
            volume: 10,
            duration,
        }
    }

    /// Feeds (timestamp, event) packets and collects every report.
    fn run(t: &mut EventTracker, pkts: &[(u32, TelephoneEvent)]) -> Vec<DigitEvent> {
        pkts.iter()
            .flat_map(|&(ts, e)| t.on_packet(ts, e))
            .collect()
    }

    #[test]
    fn payload_round_trip_and_bytes() {
        // RFC 4733 §2.3 layout: event 5, E=1, volume 10, duration 800.
        let b = [0x05, 0x8a, 0x03, 0x20];
        let e = TelephoneEvent::parse(&b).expect("4 bytes");
        assert_eq!(e, ev(5, true, 800));
        let mut out = [0u8; 4];
        assert_eq!(e.write(&mut out), Ok(4));
        assert_eq!(out, b);
        // The reserved bit is ignored on input and zero on output.
        let e = TelephoneEvent::parse(&[11, 0x40 | 0x3f, 0, 160]).expect("ok");
        assert_eq!((e.event, e.end, e.volume, e.duration), (11, false, 63, 160));
        assert_eq!(TelephoneEvent::parse(&b[..3]), Err(EventError::TooShort));
        assert_eq!(
            e.write(&mut [0u8; 3]),
            Err(WriteError::BufferTooSmall { needed: 4 })
        );
    }

    #[test]
    fn keys_map_to_chars() {
        let s: String = (0..=16)
            .map(|c| Key::from_event(c).expect("dtmf").as_char())
            .collect();
        assert_eq!(s, "0123456789*#ABCD!");
        assert_eq!(Key::from_event(17), None);
        assert_eq!(Key::from_char('#'), Some(Key::Pound));
        assert_eq!(Key::from_char('d'), Some(Key::D));
        assert_eq!(Key::Star.event_code(), 10);
        assert_eq!(Key::from_char('x'), None);
    }

    #[test]
    fn one_digit_with_three_end_retransmissions() {
        let mut t = EventTracker::new();
        let got = run(
            &mut t,
            &[
                (8000, ev(5, false, 160)),
                (8000, ev(5, false, 320)),
                (8000, ev(5, false, 480)),
                (8000, ev(5, false, 640)),
                (8000, ev(5, true, 800)),
                (8000, ev(5, true, 800)),
                (8000, ev(5, true, 800)),
            ],
        );
        assert_eq!(
            got,
            [DigitEvent {
                key: Key::Digit5,
                timestamp: 8000,
                duration: 800,
                volume: 10,
                ended: true
            }]
        );
        assert_eq!(got[0].duration_ms(8000), 100);
        assert_eq!(t.finish(), None);
    }

    #[test]
    fn two_digits_back_to_back() {
        let mut t = EventTracker::new();
        let got = run(
            &mut t,
            &[
                (1000, ev(1, false, 160)),
                (1000, ev(1, true, 320)),
                (1000, ev(1, true, 320)),
                (1000, ev(1, true, 320)),
                (1480, ev(2, false, 160)),
                (1480, ev(2, false, 320)),
                (1480, ev(2, true, 480)),
                (1480, ev(2, true, 480)),
                (1480, ev(2, true, 480)),
            ],
        );
        let keys: Vec<_> = got
            .iter()
            .map(|d| (d.key, d.timestamp, d.duration, d.ended))
            .collect();
        assert_eq!(
            keys,
            [
                (Key::Digit1, 1000, 320, true),
                (Key::Digit2, 1480, 480, true)
            ]
        );
    }

    #[test]
    fn digit_across_a_lost_packet() {
        let mut t = EventTracker::new();
        // The 320 update is lost; the first packet (with the marker) too.
        let got = run(
            &mut t,
            &[
                (5000, ev(9, false, 480)),
                (5000, ev(9, true, 640)),
                (5000, ev(9, true, 640)),
            ],
        );
        assert_eq!(got.len(), 1);
        assert_eq!(
            (got[0].key, got[0].duration, got[0].ended),
            (Key::Digit9, 640, true)
        );
    }

    #[test]
    fn lost_end_packets_closed_by_the_next_event() {
        let mut t = EventTracker::new();
        let got = run(
            &mut t,
            &[
                (100, ev(11, false, 160)),
                (100, ev(11, false, 320)),
                // all three ends lost; '*' arrives with only its end packet
                (900, ev(10, true, 400)),
                (900, ev(10, true, 400)),
            ],
        );
        let keys: Vec<_> = got.iter().map(|d| (d.key, d.duration, d.ended)).collect();
        assert_eq!(keys, [(Key::Pound, 320, false), (Key::Star, 400, true)]);
        // A lost end on the last digit is recovered by finish().
        let mut t = EventTracker::new();
        assert_eq!(run(&mut t, &[(5, ev(0, false, 160))]), []);
        assert_eq!(t.in_progress(), Some(Key::Digit0));
        let d = t.finish().expect("flushed");
        assert_eq!((d.key, d.duration, d.ended), (Key::Digit0, 160, false));
        assert_eq!(t.finish(), None);
        // Its late end packet is not reported a second time.
        assert_eq!(run(&mut t, &[(5, ev(0, true, 320))]), []);
    }

    #[test]
    fn reordered_updates_keep_the_longest_and_stragglers_are_dropped() {
        let mut t = EventTracker::new();
        let got = run(
            &mut t,
            &[
                (7000, ev(3, false, 480)),
                (7000, ev(3, false, 320)), // late
                (7000, ev(3, true, 640)),
                (7000, ev(3, false, 160)), // later still, after the end
                (7640, ev(4, false, 160)),
                (7000, ev(3, true, 640)), // a retransmitted end after '4' began
                (7640, ev(4, true, 320)),
            ],
        );
        let keys: Vec<_> = got.iter().map(|d| (d.key, d.duration)).collect();
        assert_eq!(keys, [(Key::Digit3, 640), (Key::Digit4, 320)]);
        // With the end lost, the longest update still sets the duration.
        let mut t = EventTracker::new();
        run(&mut t, &[(10, ev(6, false, 480)), (10, ev(6, false, 320))]);
        assert_eq!(t.finish().map(|d| d.duration), Some(480));
    }

    #[test]
    fn long_event_segments_are_summed() {
        let mut t = EventTracker::new();
        let start = u32::MAX - 100; // and across timestamp wrap
        let seg2 = start.wrapping_add(0xffff);
        let got = run(
            &mut t,
            &[
                (start, ev(12, false, 160)),
                (start, ev(12, false, 0xffff)),
                (seg2, ev(12, false, 8000)),
                (seg2, ev(12, true, 8160)),
                (seg2, ev(12, true, 8160)),
            ],
        );
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].key, Key::A);
        assert_eq!(got[0].timestamp, start);
        assert_eq!(got[0].duration, 0xffff + 8160);
    }

    #[test]
    fn same_timestamp_new_key_is_a_new_event() {
        let mut t = EventTracker::new();
        let got = run(
            &mut t,
            &[
                (3200, ev(1, false, 160)),
                (3200, ev(1, true, 320)),
                (3200, ev(1, true, 320)),
                (3200, ev(2, false, 160)),
                (3200, ev(2, true, 320)),
                (3200, ev(2, true, 320)),
            ],
        );
        let keys: Vec<_> = got.iter().map(|d| d.key).collect();
        assert_eq!(keys, [Key::Digit1, Key::Digit2]);
    }

    #[test]
    fn non_dtmf_events_are_not_reported() {
        let mut t = EventTracker::new();
        let got = run(
            &mut t,
            &[
                (0, ev(32, false, 160)), // answer tone (ANS)
                (0, ev(32, true, 320)),
                (400, ev(7, true, 160)),
            ],
        );
        let keys: Vec<_> = got.iter().map(|d| d.key).collect();
        assert_eq!(keys, [Key::Digit7]);
    }
}
