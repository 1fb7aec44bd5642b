//! A caller in a conference through `tandem up`, with SIPp: alice dials the
//! conference number, sends audio, holds and resumes (the answers must say
//! recvonly, then sendrecv), and hangs up. The CDR names the room, and the
//! mixer's and the SBC's figures show audio went both ways.

mod common;

use common::{
    alice_calls, demo_platform, have_sipp, http_get, newest_cdr, scenario, sipp_command, up,
};

use std::time::Duration;

use store::{Disposition, HangupSide};

#[test]
fn a_caller_joins_holds_resumes_and_leaves_a_conference() {
    if !have_sipp() {
        return;
    }
    let (dir, config) = demo_platform("conf-sipp", 38000);
    common::tandem(
        &dir,
        &["number", "add", "demo", "3000", "--conference", "room"],
    );
    let up = up(&dir, &config, "up");

    let alice = sipp_command(&alice_calls(
        up.sip.to_string(),
        "3000",
        &scenario("uac_hold_resume.xml"),
    ))
    .spawn()
    .expect("alice");
    // While she is in, the room is listed with its mixer.
    let mut listed = String::new();
    for _ in 0..50 {
        listed = http_get(up.api, "/conferences");
        if listed.contains(" room ") {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        listed.contains(" room ") && listed.contains("mixer-local"),
        "/conferences:\n{listed}"
    );
    let out = alice.wait_with_output().expect("alice");
    assert_eq!(
        out.status.code(),
        Some(0),
        "alice: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );

    let cdr = newest_cdr(&dir);
    assert_eq!(cdr.disposition, Disposition::Answered, "{cdr:?}");
    assert_eq!(cdr.direction, "conference");
    assert_eq!(cdr.callee, "room");
    assert_eq!(cdr.hangup_side, HangupSide::Caller);
    // 14 s of audio from SIPp, 50 packets a second: the SBC took it in from
    // alice, and the mixer both heard her and sent her the room.
    let caller = cdr.leg_a.expect("caller leg figures");
    assert!(caller.packets_received >= 400, "SBC from alice: {caller:?}");
    let mixer = cdr.leg_b.expect("the mixer's figures");
    assert!(mixer.packets_received >= 400, "mixer from alice: {mixer:?}");
    assert!(mixer.packets_sent >= 400, "mixer to alice: {mixer:?}");

    // Empty again: the room is gone.
    let mut listed = String::new();
    for _ in 0..50 {
        listed = http_get(up.api, "/conferences");
        if !listed.contains(" room ") {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(!listed.contains(" room "), "/conferences:\n{listed}");
    drop(up);
    let _ = std::fs::remove_dir_all(&dir);
}
