//! The mixer node over real sockets: a brain (the protocol's own listener,
//! in this test) hands it a conference; three UDP sockets play the SBC
//! endpoints of three participants, each sending a tone as 20 ms PCMU
//! packets in real time, and decode what the mixer sends back: each must
//! hear the other two and not itself.

use std::collections::HashMap;
use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use media::analysis::{tone_amplitude, tone_from};
use media::{AnyCodec, Codec, CodecKind};
use mixer::{Mixer, MixerConfig};
use proto::brain::{BrainConfig, NodeHandle, listen};
use proto::message::{ErrorCode, ReplyBody, RequestBody, Role};
use proto::snapshot::{
    ConferenceId, ConferenceOptions, ConferenceSnapshot, LocalEndpoint, Participant,
    ParticipantFlags, PayloadType, RangeId, Rtcp,
};
use rtp::{RtpHeader, RtpPacket};

const TONES: [f64; 3] = [440.0, 1000.0, 1600.0];

fn pcmu() -> PayloadType {
    PayloadType {
        pt: 0,
        name: "PCMU".into(),
        clock_rate: 8000,
        channels: 1,
    }
}

fn snapshot(
    version: u64,
    range: RangeId,
    port: u16,
    endpoints: &[SocketAddr],
) -> ConferenceSnapshot {
    ConferenceSnapshot {
        conference_id: ConferenceId("room-1".into()),
        version,
        sample_rate: 16000,
        tick_ms: 20,
        max_speakers: 3,
        options: ConferenceOptions::default(),
        participants: endpoints
            .iter()
            .enumerate()
            .map(|(i, &e)| Participant {
                participant_id: i as u32 + 1,
                local: LocalEndpoint {
                    range_id: range,
                    rtp_port: port,
                    rtcp: Rtcp::Mux,
                },
                sbc_endpoint: e,
                payload_type: pcmu(),
                ssrc: 0x1000 + i as u32,
                flags: ParticipantFlags::default(),
            })
            .collect(),
    }
}

struct Node {
    mixer: mixer::MixerHandle,
    handle: NodeHandle,
    events: tokio::sync::mpsc::UnboundedReceiver<proto::brain::NodeEvent>,
    range: RangeId,
    port: u16,
    _rt: tokio::runtime::Runtime,
}

impl Node {
    fn request(&self, body: RequestBody) -> Result<ReplyBody, proto::brain::RequestError> {
        self._rt
            .block_on(self.handle.request(body, Duration::from_secs(2)))
    }
}

fn start() -> Node {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    let (handle, hello, mixer, events) = rt.block_on(async {
        let mut incoming = listen("127.0.0.1:0".parse().expect("addr"), BrainConfig::default())
            .await
            .expect("listen");
        let mixer = Mixer::start(MixerConfig {
            brain: incoming.local_addr(),
            node_id: "mixer-test".into(),
            first_port: 0,
            ..MixerConfig::default()
        })
        .expect("mixer");
        let conn = tokio::time::timeout(Duration::from_secs(5), incoming.next())
            .await
            .expect("the mixer connects")
            .expect("a connection");
        // Keep the listener's task alive with the runtime.
        std::mem::forget(incoming);
        (conn.handle, conn.hello, mixer, conn.events)
    });
    assert_eq!(hello.role, Role::Mixer);
    assert_eq!(hello.ranges.len(), 1, "one port per worker");
    let r = &hello.ranges[0];
    assert_eq!(r.first_port, mixer.ports()[0]);
    Node {
        range: r.id,
        port: r.first_port,
        mixer,
        handle,
        events,
        _rt: rt,
    }
}

impl Node {
    /// Media events the mixer sent so far.
    fn media_events(&mut self) -> Vec<proto::message::Event> {
        let mut out = Vec::new();
        while let Ok(ev) = self.events.try_recv() {
            if let proto::brain::NodeEvent::Event(e) = ev {
                out.push(e);
            }
        }
        out
    }
}

/// A participant's SBC endpoint: sends its tone, decodes what comes.
struct Endpoint {
    sock: UdpSocket,
    enc: AnyCodec,
    dec: AnyCodec,
    heard: Vec<i16>,
    packets: u64,
}

impl Endpoint {
    fn new() -> Endpoint {
        let sock = UdpSocket::bind("127.0.0.1:0").expect("bind");
        sock.set_nonblocking(true).expect("nonblocking");
        Endpoint {
            sock,
            enc: AnyCodec::new(CodecKind::Pcmu).expect("pcmu"),
            dec: AnyCodec::new(CodecKind::Pcmu).expect("pcmu"),
            heard: Vec::new(),
            packets: 0,
        }
    }

    fn addr(&self) -> SocketAddr {
        self.sock.local_addr().expect("addr")
    }

    fn send(&mut self, to: SocketAddr, seq: u16, freq: f64) {
        let pcm = tone_from(8000, freq, 8000.0, usize::from(seq) * 160, 160);
        let mut payload = [0u8; 160];
        let n = self.enc.encode(&pcm, &mut payload).expect("encode");
        let mut buf = [0u8; 200];
        let h = RtpHeader {
            marker: seq == 0,
            payload_type: 0,
            sequence_number: seq,
            timestamp: u32::from(seq) * 160,
            ssrc: 0xabc0 + freq as u32,
            csrcs: &[],
            extension: None,
        };
        let len = h.write(&mut buf).expect("header");
        buf[len..len + n].copy_from_slice(&payload[..n]);
        let _ = self.sock.send_to(&buf[..len + n], to);
    }

    fn receive(&mut self) {
        let mut buf = [0u8; 2048];
        while let Ok((n, _)) = self.sock.recv_from(&mut buf) {
            let Ok(p) = RtpPacket::parse(&buf[..n]) else {
                continue;
            };
            let mut pcm = [0i16; 160];
            if let Ok(k) = self.dec.decode(p.payload(), &mut pcm) {
                self.heard.extend_from_slice(&pcm[..k]);
                self.packets += 1;
            }
        }
    }
}

/// `secs` of real-time audio from every endpoint to the mixer.
fn play(node: &Node, eps: &mut [Endpoint], freqs: &[f64], secs: u64) {
    let to = SocketAddr::from(([127, 0, 0, 1], node.port));
    let start = Instant::now();
    let ticks = secs * 50;
    for seq in 0..ticks {
        let due = start + Duration::from_millis(20 * seq);
        if let Some(w) = due.checked_duration_since(Instant::now()) {
            std::thread::sleep(w);
        }
        for (e, &f) in eps.iter_mut().zip(freqs) {
            e.send(to, seq as u16, f);
            e.receive();
        }
    }
    std::thread::sleep(Duration::from_millis(100));
    for e in eps.iter_mut() {
        e.receive();
    }
}

#[test]
fn three_participants_each_hear_the_other_two_over_real_sockets() {
    let node = start();
    let mut eps: Vec<Endpoint> = (0..3).map(|_| Endpoint::new()).collect();
    let addrs: Vec<SocketAddr> = eps.iter().map(Endpoint::addr).collect();
    let reply = node
        .request(RequestBody::ApplyConference(snapshot(
            1, node.range, node.port, &addrs,
        )))
        .expect("applied");
    assert_eq!(reply, ReplyBody::Applied { version: 1 });

    play(&node, &mut eps, &TONES, 2);
    for (i, e) in eps.iter().enumerate() {
        assert!(
            e.packets >= 90,
            "endpoint {i} got only {} packets",
            e.packets
        );
        // The last second, when every jitter buffer is settled.
        let tail = &e.heard[e.heard.len().saturating_sub(8000)..];
        for (j, &f) in TONES.iter().enumerate() {
            let a = tone_amplitude(tail, 8000, f);
            if i == j {
                assert!(a < 100.0, "endpoint {i} hears itself ({f} Hz) at {a}");
            } else {
                assert!(a > 3000.0, "endpoint {i} hears {f} Hz at only {a}");
            }
        }
    }

    // A stranger's packets are dropped and counted.
    let stranger = UdpSocket::bind("127.0.0.1:0").expect("bind");
    for _ in 0..5 {
        let _ = stranger.send_to(
            &[0x80, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1],
            ("127.0.0.1", node.port),
        );
    }
    std::thread::sleep(Duration::from_millis(100));
    assert!(node.mixer.counters().unknown_source >= 5);
    assert!(
        node.mixer
            .metrics_text()
            .contains("tandem_mixer_participants 3")
    );

    // An older version is refused and changes nothing.
    let stale = node.request(RequestBody::ApplyConference(snapshot(
        0,
        node.range,
        node.port,
        &addrs[..1],
    )));
    match stale {
        Err(proto::brain::RequestError::Refused(e)) => assert_eq!(e.code, ErrorCode::STALE_VERSION),
        other => panic!("stale snapshot: {other:?}"),
    }

    // Released: the final figures of each participant.
    let reply = node
        .request(RequestBody::ReleaseConference {
            conference_id: ConferenceId("room-1".into()),
        })
        .expect("released");
    let ReplyBody::ConferenceStats { participants, .. } = reply else {
        panic!("no stats: {reply:?}");
    };
    let by_id: HashMap<u32, _> = participants.into_iter().collect();
    assert_eq!(by_id.len(), 3);
    for s in by_id.values() {
        assert!(s.packets_in >= 90 && s.packets_out >= 90, "{s:?}");
    }
    assert_eq!(node.mixer.counters().participants, 0);
}

#[test]
fn bad_conferences_are_refused_with_a_reason() {
    let node = start();
    let addrs = ["127.0.0.1:20000".parse().expect("addr")];
    let mut s = snapshot(1, node.range, node.port, &addrs);
    s.participants[0].payload_type.name = "GSM".into();
    match node.request(RequestBody::ApplyConference(s)) {
        Err(proto::brain::RequestError::Refused(e)) => assert_eq!(e.code, ErrorCode::UNSUPPORTED),
        other => panic!("GSM: {other:?}"),
    }
    let s = snapshot(1, node.range, node.port + 1, &addrs);
    match node.request(RequestBody::ApplyConference(s)) {
        Err(proto::brain::RequestError::Refused(e)) => assert_eq!(e.code, ErrorCode::INVALID),
        other => panic!("a port not ours: {other:?}"),
    }
    match node.request(RequestBody::ApplyCall(proto::snapshot::CallSnapshot {
        call_id: proto::snapshot::CallId("c".into()),
        version: 1,
        legs: Vec::new(),
    })) {
        Err(proto::brain::RequestError::Refused(e)) => assert_eq!(e.code, ErrorCode::UNSUPPORTED),
        other => panic!("a call: {other:?}"),
    }
}

#[test]
fn the_mix_is_recorded_and_talkers_are_reported() {
    let mut node = start();
    let dir = tempfile::tempdir().expect("dir");
    let wav = dir.path().join("room.wav");
    let mut eps: Vec<Endpoint> = (0..2).map(|_| Endpoint::new()).collect();
    let addrs: Vec<SocketAddr> = eps.iter().map(Endpoint::addr).collect();
    let mut s = snapshot(1, node.range, node.port, &addrs);
    s.options.recording = Some(wav.display().to_string());
    s.options.join_leave_tones = true;
    node.request(RequestBody::ApplyConference(s))
        .expect("applied");
    play(&node, &mut eps, &TONES[..2], 2);
    node.request(RequestBody::ReleaseConference {
        conference_id: ConferenceId("room-1".into()),
    })
    .expect("released");

    // Talk events for both, and the recording's end with its length.
    let mut events = Vec::new();
    for _ in 0..50 {
        events.extend(node.media_events());
        if events
            .iter()
            .any(|e| matches!(e, proto::message::Event::RecordingDone { .. }))
        {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    for id in [1, 2] {
        assert!(
            events.iter().any(|e| matches!(e,
                proto::message::Event::Talking { participant_id, talking: true, .. } if *participant_id == id)),
            "participant {id} reported talking: {events:?}"
        );
    }
    let done = events
        .iter()
        .find_map(|e| match e {
            proto::message::Event::RecordingDone {
                path, duration_ms, ..
            } => Some((path.clone(), *duration_ms)),
            _ => None,
        })
        .expect("RecordingDone");
    assert_eq!(done.0, wav.display().to_string());
    assert!(
        (1700..2600).contains(&done.1),
        "recorded {} ms of ~2 s",
        done.1
    );
    // The file holds both talkers, at the conference rate.
    let w = media::wav::Wav::open(&wav).expect("wav");
    assert_eq!(w.rate, 16000);
    let pcm = w.to_mono();
    let tail = &pcm[pcm.len() / 2..];
    for f in &TONES[..2] {
        assert!(
            tone_amplitude(tail, 16000, *f) > 3000.0,
            "{f} Hz in the recording"
        );
    }
}
