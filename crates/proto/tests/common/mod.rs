//! Sample messages shared by the tests: one of every kind.
#![allow(dead_code)] // each test binary uses a different part

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use proto::message::*;
use proto::snapshot::*;

pub fn ip(last: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(192, 0, 2, last))
}

pub fn pcmu() -> PayloadType {
    PayloadType {
        pt: 0,
        name: "PCMU".into(),
        clock_rate: 8000,
        channels: 1,
    }
}

pub fn range(id: u32) -> PortRange {
    PortRange {
        id: RangeId(id),
        bind_ip: ip(10),
        vip: Some(ip(100 + id as u8)),
        first_port: 20000 + id as u16 * 1000,
        last_port: 20999 + id as u16 * 1000,
    }
}

/// A call with `legs` legs; big enough to be compressed when `legs` is large.
pub fn call(id: &str, version: u64, legs: u32) -> CallSnapshot {
    CallSnapshot {
        call_id: CallId(id.into()),
        version,
        legs: (0..legs)
            .map(|i| LegSpec {
                leg_id: LegId(i),
                local: LocalEndpoint {
                    range_id: RangeId(1),
                    rtp_port: 20000 + 2 * i as u16,
                    rtcp: if i % 2 == 0 {
                        Rtcp::Mux
                    } else {
                        Rtcp::Port(20001 + 2 * i as u16)
                    },
                },
                expected_remote: Some(SocketAddr::new(
                    IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, i as u16)),
                    40000,
                )),
                latch: i % 3 == 0,
                payload_types: vec![
                    pcmu(),
                    PayloadType {
                        pt: 111,
                        name: "opus".into(),
                        clock_rate: 48000,
                        channels: 2,
                    },
                ],
                telephone_event_pt: Some(101),
                relay_to: Some(LegId(i ^ 1)),
                continuation: (i % 2 == 1).then_some(StreamContinuation {
                    ssrc: 0xdead_beef ^ i,
                    seq: 65535,
                    timestamp: u32::MAX - i,
                }),
            })
            .collect(),
    }
}

pub fn conference(id: &str, version: u64, participants: u32) -> ConferenceSnapshot {
    ConferenceSnapshot {
        conference_id: ConferenceId(id.into()),
        version,
        sample_rate: 16000,
        tick_ms: 20,
        max_speakers: 3,
        options: ConferenceOptions {
            moderator_required: true,
            join_leave_tones: true,
            alone_prompt: Some("/var/lib/tandem/prompts/en/alone.wav".into()),
            wait_music: None,
            recording: Some("/var/lib/tandem/rec/conf-1.wav".into()),
            noise_suppression: false,
            level_control: true,
        },
        participants: (0..participants)
            .map(|i| Participant {
                participant_id: i,
                local: LocalEndpoint {
                    range_id: RangeId(7),
                    rtp_port: 30000 + 2 * i as u16,
                    rtcp: Rtcp::Mux,
                },
                sbc_endpoint: SocketAddr::new(ip(20), 20000 + i as u16),
                payload_type: pcmu(),
                ssrc: 0x5eed_0000 + i,
                flags: ParticipantFlags {
                    muted: i == 1,
                    deaf: i == 2,
                    moderator: i == 0,
                },
            })
            .collect(),
    }
}

pub fn hello(node: &str, snapshots: Vec<Snapshot>) -> Hello {
    Hello {
        node_id: NodeId(node.into()),
        role: Role::Sbc,
        protocol_version: proto::ProtocolVersion::CURRENT,
        capacity: Capacity {
            max_streams: 10_000,
            workers: 2,
        },
        media_addrs: vec![ip(10), IpAddr::V6(Ipv6Addr::LOCALHOST)],
        ranges: vec![range(1), range(2)],
        snapshots,
    }
}

pub fn all_node_messages() -> Vec<NodeMessage> {
    let call_id = CallId("c-1".into());
    let stats = LegStats {
        packets_in: 1500,
        packets_out: 1499,
        bytes_in: 258_000,
        bytes_out: 257_828,
        lost: 3,
        jitter_us: 1250,
        mos_x100: 432,
    };
    vec![
        NodeMessage::Hello(hello("sbc-1", vec![])),
        NodeMessage::Hello(hello(
            "sbc-1",
            vec![
                Snapshot::Call(call("c-1", 3, 2)),
                Snapshot::Call(call("c-2", 9, 64)),
                Snapshot::Conference(conference("conf-1", 1, 5)),
            ],
        )),
        NodeMessage::Heartbeat(Heartbeat {
            seq: u64::MAX,
            load: Load {
                active_streams: 42,
                packets_per_sec: 2100,
                cpu_percent: 17,
            },
        }),
        NodeMessage::Reply(Reply {
            req_id: 1,
            result: Ok(ReplyBody::Done),
        }),
        NodeMessage::Reply(Reply {
            req_id: 2,
            result: Ok(ReplyBody::Applied { version: 7 }),
        }),
        NodeMessage::Reply(Reply {
            req_id: 3,
            result: Ok(ReplyBody::Stats {
                call_id: call_id.clone(),
                legs: vec![(LegId(0), stats), (LegId(1), LegStats::default())],
            }),
        }),
        NodeMessage::Reply(Reply {
            req_id: 4,
            result: Err(ErrorBody::new(ErrorCode::STALE_VERSION, "have 9, got 8")),
        }),
        NodeMessage::Reply(Reply {
            req_id: 5,
            result: Err(ErrorBody::new(ErrorCode(999), "from a newer peer")),
        }),
        NodeMessage::Event(Event::LegLatched {
            call_id: call_id.clone(),
            leg: LegId(1),
            remote: SocketAddr::new(ip(55), 5004),
        }),
        NodeMessage::Event(Event::Dtmf {
            call_id: call_id.clone(),
            leg: LegId(0),
            digit: '#',
            duration_ms: 160,
        }),
        NodeMessage::Event(Event::MediaTimeout {
            call_id: call_id.clone(),
            leg: LegId(0),
        }),
        NodeMessage::Event(Event::LegStats {
            call_id,
            leg: LegId(0),
            stats,
        }),
    ]
}

pub fn all_brain_messages() -> Vec<BrainMessage> {
    let req = |req_id, body| BrainMessage::Request(Request { req_id, body });
    vec![
        BrainMessage::Welcome(Welcome {
            brain_id: "brain-a".into(),
            protocol_version: proto::ProtocolVersion::CURRENT,
            heartbeat_interval_ms: 100,
            dead_after_ms: 500,
        }),
        BrainMessage::Refused(ErrorBody::new(ErrorCode::VERSION_MISMATCH, "2.0 vs 1.0")),
        BrainMessage::HeartbeatAck { seq: 12 },
        req(
            1,
            RequestBody::AssignRanges {
                ranges: vec![
                    range(1),
                    PortRange {
                        vip: None,
                        ..range(2)
                    },
                ],
            },
        ),
        req(2, RequestBody::ApplyCall(call("c-1", 1, 2))),
        req(3, RequestBody::ApplyCall(call("c-big", 1, 200))),
        req(
            4,
            RequestBody::ReleaseCall {
                call_id: CallId("c-1".into()),
            },
        ),
        req(
            5,
            RequestBody::GetStats {
                call_id: CallId("c-1".into()),
            },
        ),
        req(6, RequestBody::ApplyConference(conference("conf-1", 2, 40))),
        req(
            7,
            RequestBody::ReleaseConference {
                conference_id: ConferenceId("conf-1".into()),
            },
        ),
    ]
}
