//! Framing: round trips, chunking, limits and garbage.

mod common;

use bytes::{BufMut, BytesMut};
use proto::frame::{DEFAULT_MAX_FRAME, FLAG_LZ4, HEADER_LEN, encode_with_limit};
use proto::{BrainMessage, DecodeError, EncodeError, FrameDecoder, NodeMessage, encode};
use serde::Serialize;
use serde::de::DeserializeOwned;

fn round_trip<M>(msgs: &[M], threshold: usize) -> usize
where
    M: Serialize + DeserializeOwned + PartialEq + std::fmt::Debug,
{
    let mut compressed = 0;
    for msg in msgs {
        let frame = encode(msg, threshold).expect("encode");
        if frame[4] & FLAG_LZ4 != 0 {
            compressed += 1;
        }
        let len = u32::from_be_bytes([frame[0], frame[1], frame[2], frame[3]]) as usize;
        assert_eq!(len + HEADER_LEN, frame.len());
        let mut dec = FrameDecoder::<M>::default();
        dec.push(&frame);
        assert_eq!(dec.next().expect("decode").as_ref(), Some(msg));
        assert!(dec.next().expect("empty").is_none());
        assert_eq!(dec.buffered(), 0);
    }
    compressed
}

#[test]
fn every_message_round_trips_uncompressed() {
    assert_eq!(round_trip(&common::all_node_messages(), usize::MAX), 0);
    assert_eq!(round_trip(&common::all_brain_messages(), usize::MAX), 0);
}

#[test]
fn every_message_round_trips_compressed() {
    // Threshold 0: every payload that LZ4 can shrink is compressed.
    let n = common::all_node_messages();
    let b = common::all_brain_messages();
    assert!(round_trip(&n, 0) > 0);
    assert!(round_trip(&b, 0) > 0);
}

#[test]
fn big_snapshots_are_compressed_small_messages_are_not() {
    let big = BrainMessage::Request(proto::message::Request {
        req_id: 1,
        body: proto::message::RequestBody::ApplyCall(common::call("c", 1, 200)),
    });
    let plain = postcard::to_allocvec(&big).expect("postcard");
    let frame = encode(&big, 512).expect("encode");
    assert_eq!(frame[4], FLAG_LZ4);
    assert!(
        frame.len() < plain.len() / 2,
        "{} vs {}",
        frame.len(),
        plain.len()
    );

    let hb = &common::all_node_messages()[2];
    assert_eq!(encode(hb, 512).expect("encode")[4], 0);
}

#[test]
fn byte_by_byte_and_many_frames_per_chunk() {
    let msgs = common::all_node_messages();
    let mut stream = Vec::new();
    for (i, m) in msgs.iter().enumerate() {
        // Alternate compressed and plain frames on one stream.
        let threshold = if i % 2 == 0 { 0 } else { usize::MAX };
        stream.extend_from_slice(&encode(m, threshold).expect("encode"));
    }

    let mut dec = FrameDecoder::<NodeMessage>::default();
    let mut got = Vec::new();
    for b in &stream {
        dec.push(std::slice::from_ref(b));
        while let Some(m) = dec.next().expect("decode") {
            got.push(m);
        }
    }
    assert_eq!(got, msgs);

    let mut dec = FrameDecoder::<NodeMessage>::default();
    dec.push(&stream);
    let mut got = Vec::new();
    while let Some(m) = dec.next().expect("decode") {
        got.push(m);
    }
    assert_eq!(got, msgs);

    // Chunks that split frames at odd places.
    let mut dec = FrameDecoder::<NodeMessage>::default();
    let mut got = Vec::new();
    for chunk in stream.chunks(7) {
        dec.push(chunk);
        while let Some(m) = dec.next().expect("decode") {
            got.push(m);
        }
    }
    assert_eq!(got, msgs);
}

#[test]
fn oversize_frame_is_fatal_from_the_header_alone() {
    let mut dec = FrameDecoder::<NodeMessage>::new(1024);
    dec.push(&[0x00, 0x00, 0x04, 0x01, 0x00]); // 1025 bytes announced
    let err = dec.next().expect_err("oversize");
    assert!(matches!(
        err,
        DecodeError::Oversize {
            len: 1025,
            max: 1024
        }
    ));
    assert!(err.is_fatal());
    // The decoder stays broken: the stream cannot be resynchronised.
    dec.push(&encode(&common::all_node_messages()[2], 512).expect("encode"));
    assert!(dec.next().expect_err("still broken").is_fatal());

    // Exactly the limit is fine.
    let mut dec = FrameDecoder::<NodeMessage>::new(1024);
    dec.push(&[0x00, 0x00, 0x04, 0x00, 0x00]);
    assert!(dec.next().expect("within limit").is_none());
}

#[test]
fn sender_refuses_a_message_over_the_limit() {
    let big = BrainMessage::Request(proto::message::Request {
        req_id: 1,
        body: proto::message::RequestBody::ApplyCall(common::call("c", 1, 200)),
    });
    let err = encode_with_limit(&big, 0, 1000).expect_err("too large");
    assert!(matches!(err, EncodeError::TooLarge { max: 1000, .. }));
}

#[test]
fn bad_frames_are_skipped_not_fatal() {
    let good = encode(&common::all_node_messages()[2], 512).expect("encode");
    let mut stream = BytesMut::new();
    // Unknown flags.
    stream.put_u32(1);
    stream.put_u8(0x80);
    stream.put_u8(0);
    // LZ4 flag with a corrupt block.
    stream.put_u32(8);
    stream.put_u8(FLAG_LZ4);
    stream.put_u32(100);
    stream.put_slice(&[0xff, 0xff, 0xff, 0xff]);
    // LZ4 claiming a huge uncompressed size: refused without allocating it.
    stream.put_u32(6);
    stream.put_u8(FLAG_LZ4);
    stream.put_u32(u32::MAX);
    stream.put_slice(&[0, 0]);
    // A message variant this side does not know (as from a newer peer).
    stream.put_u32(2);
    stream.put_u8(0);
    stream.put_slice(&[0x7f, 0x00]);
    stream.put_slice(&good);

    let mut dec = FrameDecoder::<NodeMessage>::default();
    dec.push(&stream);
    for _ in 0..4 {
        let err = dec.next().expect_err("bad frame");
        assert!(!err.is_fatal(), "{err}");
    }
    assert_eq!(
        dec.next().expect("good frame after bad ones"),
        Some(common::all_node_messages()[2].clone())
    );
}

/// Deterministic xorshift so a failure reproduces.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

fn drain<M: DeserializeOwned>(dec: &mut FrameDecoder<M>) {
    // Each message or non-fatal error consumes a frame, so this ends; bound it anyway.
    for _ in 0..10_000 {
        match dec.next() {
            Ok(None) => return,
            Err(e) if e.is_fatal() => return,
            Ok(Some(_)) | Err(_) => {}
        }
    }
    panic!("decoder made no progress");
}

#[test]
fn garbage_never_panics() {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let valid: Vec<Vec<u8>> = common::all_node_messages()
        .iter()
        .map(|m| encode(m, 64).expect("encode").to_vec())
        .chain(
            common::all_brain_messages()
                .iter()
                .map(|m| encode(m, 64).expect("encode").to_vec()),
        )
        .collect();

    for round in 0..50_000 {
        let data = match round % 3 {
            // Pure noise.
            0 => (0..rng.below(300))
                .map(|_| rng.next() as u8)
                .collect::<Vec<_>>(),
            // A valid frame with a few bytes flipped (reaches postcard and LZ4).
            1 => {
                let mut f = valid[rng.below(valid.len())].clone();
                for _ in 0..1 + rng.below(4) {
                    let i = rng.below(f.len());
                    f[i] ^= rng.next() as u8 | 1;
                }
                f
            }
            // A plausible header over a noisy payload.
            _ => {
                let len = rng.below(200);
                let mut f = (len as u32).to_be_bytes().to_vec();
                f.push(rng.below(2) as u8);
                f.extend((0..len).map(|_| rng.next() as u8));
                f
            }
        };
        let mut node = FrameDecoder::<NodeMessage>::new(4096);
        let mut brain = FrameDecoder::<BrainMessage>::new(4096);
        let mut at = 0;
        while at < data.len() {
            let n = 1 + rng.below(data.len() - at);
            node.push(&data[at..at + n]);
            brain.push(&data[at..at + n]);
            drain(&mut node);
            drain(&mut brain);
            at += n;
        }
    }
}

#[test]
fn default_limit_is_one_mebibyte() {
    assert_eq!(DEFAULT_MAX_FRAME, 1 << 20);
}
