//! Arbitrary bytes into the SDP parser: it must return, never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    sip::sdp::parse_fuzz(data);
});
