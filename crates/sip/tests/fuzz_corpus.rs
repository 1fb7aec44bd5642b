//! Runs the fuzz seed corpus (`fuzz/corpus/message/`) through the invariants
//! of the `message` fuzz target, so plain `cargo test` exercises them without
//! cargo-fuzz.

use std::path::Path;

use sip::{Message, ParseError};

type Parser = fn(Vec<u8>) -> Result<Message, ParseError>;

fn check(name: &str, parsed: Result<Message, ParseError>, reparse: Parser) -> bool {
    match parsed {
        Ok(m) => {
            if m.is_request() {
                let mut resp = Message::response_to(&m, 180, None);
                resp.set_to_tag("t1");
                sip::parse_datagram(resp.to_bytes())
                    .unwrap_or_else(|e| panic!("{name}: response_to output does not parse: {e}"));
            }
            let mut stamped = m.clone();
            stamped.stamp_received("[2001:db8::7]:5070".parse().expect("address"));
            sip::parse_datagram(stamped.to_bytes())
                .unwrap_or_else(|e| panic!("{name}: stamped message does not parse: {e}"));
            let first = m.to_bytes();
            assert_eq!(first.len(), m.encoded_len(), "{name}: encoded_len");
            let again = reparse(first.clone())
                .unwrap_or_else(|e| panic!("{name}: serialized form does not re-parse: {e}"));
            assert_eq!(
                String::from_utf8_lossy(&again.to_bytes()),
                String::from_utf8_lossy(&first),
                "{name}: re-serialization differs"
            );
            true
        }
        Err(e) => {
            if let Some(resp) = e.response() {
                // A 400 may be malformed only where it echoes the request.
                if let Err(e2) = sip::parse_datagram(resp.to_bytes()) {
                    assert!(
                        sip::parse::is_echoed_header_fault(&e2.reason),
                        "{name}: the {} sent does not parse: {e2}",
                        e.status
                    );
                }
            }
            false
        }
    }
}

#[test]
fn seed_corpus_keeps_the_fuzz_invariants() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus/message");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    assert!(
        files.len() >= 15,
        "seed corpus missing or thin: {}",
        files.len()
    );

    let mut accepted = 0;
    for path in &files {
        let name = path
            .file_name()
            .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
        let data = std::fs::read(path).unwrap_or_else(|e| panic!("{name}: {e}"));
        let ok = check(
            &name,
            sip::parse_datagram(data.clone()),
            sip::parse_datagram,
        );
        check(
            &name,
            sip::parse_stream_frame(data),
            sip::parse_stream_frame,
        );
        // Seeds named bad_* are there to exercise the error paths.
        assert_eq!(ok, !name.starts_with("bad_"), "{name}: parsed = {ok}");
        accepted += usize::from(ok);
    }
    assert!(accepted >= 10);
}
