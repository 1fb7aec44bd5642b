//! What happens inside an answered call through `tandem up`, with SIPp on
//! both sides: the caller holds and resumes (re-INVITEs relayed with the
//! SDP rewritten to the SBC and the direction answered back), and the
//! callee hangs up (its BYE reaches the caller, the CDR says who hung up,
//! the SBC lets go of the call's ports).

mod common;

use common::{
    Up, alice_calls_bob, cdr_leg_packets, demo_platform, free_udp_port, have_sipp, http_get,
    metric, newest_cdr, newest_cdr_row, scenario, sipp_command, sipp_register, up,
};

use std::path::Path;
use std::process::Output;
use std::time::Duration;

use store::{Disposition, HangupSide};

/// Bob registered and answering with `bob_scenario`, alice calling with
/// `alice_scenario`: both SIPps' outputs, once both have finished.
fn call(up: &Up, dir: &Path, alice_scenario: &str, bob_scenario: &str) -> (Output, Output) {
    let bob_port = free_udp_port();
    sipp_register(dir, up.sip, "bob", bob_port);
    let bob = sipp_command(&[
        "-sf".into(),
        scenario(bob_scenario).display().to_string(),
        "-p".into(),
        bob_port.to_string(),
        "-mp".into(),
        free_udp_port().to_string(),
        "-rtp_echo".into(),
        "-m".into(),
        "1".into(),
    ])
    .spawn()
    .expect("bob's uas");
    std::thread::sleep(Duration::from_millis(500));
    let alice = sipp_command(&alice_calls_bob(
        up.sip.to_string(),
        &scenario(alice_scenario),
    ))
    .output()
    .expect("alice's uac");
    let bob = bob.wait_with_output().expect("bob");
    (alice, bob)
}

fn assert_passed(who: &str, out: &Output) {
    assert_eq!(
        out.status.code(),
        Some(0),
        "{who}: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Until the SBC holds no call (its ports are free again); the last
/// metrics text.
fn wait_for_sbc_idle(up: &Up) -> String {
    let mut text = String::new();
    for _ in 0..50 {
        text = http_get(up.api, "/metrics");
        if metric(&text, "sbc_calls") == 0
            && metric(&text, "sbc_streams") == 0
            && metric(&text, "tandem_active_calls") == 0
        {
            return text;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("the call's media was not released:\n{text}");
}

#[test]
fn hold_and_resume_are_relayed_and_audio_flows_again() {
    if !have_sipp() {
        return;
    }
    let (dir, config) = demo_platform("up-hold", 35000);
    let up = up(&dir, &config, "up");
    // Alice plays 7 s of audio, holds (a=sendonly; bob must see sendonly
    // and alice must get recvonly back), resumes (sendrecv both ways) and
    // plays the same 7 s again; bob echoes what reaches him.
    let (alice, bob) = call(&up, &dir, "uac_hold_resume.xml", "uas_hold_resume.xml");
    assert_passed("alice (hold and resume)", &alice);
    assert_passed("bob (hold and resume)", &bob);

    let cdr = newest_cdr(&dir);
    assert_eq!(cdr.disposition, Disposition::Answered);
    assert_eq!(cdr.hangup_side, HangupSide::Caller);
    // One play is 233 packets each way; more than 400 on each leg means the
    // audio after the resume crossed the SBC as well as the audio before.
    let row = newest_cdr_row(&dir);
    for received in cdr_leg_packets(&row) {
        assert!(
            received >= 400,
            "a leg received only {received} packets; no audio after resume? {row}"
        );
    }
    wait_for_sbc_idle(&up);
    drop(up);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn callee_hangs_up_and_the_caller_gets_the_bye() {
    if !have_sipp() {
        return;
    }
    let (dir, config) = demo_platform("up-callee-bye", 36000);
    let up = up(&dir, &config, "up");
    // While the call is up, GET /calls lists it.
    let api = up.api;
    let watcher = std::thread::spawn(move || {
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        while std::time::Instant::now() < deadline {
            let text = http_get(api, "/calls");
            if let Some(line) = text.lines().find(|l| l.contains(" Answered ")) {
                return Some(line.to_string());
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        None
    });
    // Bob answers, lets alice's audio run 5 s, then sends BYE; alice must
    // receive a BYE (within 30 s) and answers it.
    let (alice, bob) = call(&up, &dir, "uac_wait_bye.xml", "uas_bye.xml");
    let line = watcher
        .join()
        .expect("watcher")
        .expect("the call in /calls");
    assert!(line.contains(" alice bob Answered "), "{line}");
    assert_passed("alice (gets BYE)", &alice);
    assert_passed("bob (sends BYE)", &bob);

    let cdr = newest_cdr(&dir);
    assert_eq!(cdr.disposition, Disposition::Answered);
    assert_eq!(cdr.sip_code, 200);
    assert_eq!(cdr.hangup_side, HangupSide::Callee);
    let talked = cdr.end_at - cdr.answer_at.expect("answered");
    assert!(
        (4000..15000).contains(&talked),
        "the call lasted {talked} ms, bob hung up after 5 s"
    );
    let metrics = wait_for_sbc_idle(&up);
    assert!(
        metrics.contains("tandem_calls_total{disposition=\"answered\"} 1"),
        "{metrics}"
    );
    let calls = http_get(up.api, "/calls");
    let body = calls.split("\r\n\r\n").nth(1).unwrap_or_default();
    assert_eq!(body.lines().count(), 1, "only the header line: {calls}");
    drop(up);
    let _ = std::fs::remove_dir_all(&dir);
}

/// Both phones stop sending media and nobody hangs up (a lost BYE, a crashed
/// phone): after the SBC's media timeout the brain ends the call itself,
/// BYEs both sides and closes the CDR, instead of billing on for hours.
#[test]
fn a_call_with_no_media_either_way_is_hung_up_by_tandem() {
    if !have_sipp() {
        return;
    }
    let (dir, config) = demo_platform("up-media-timeout", 39000);
    let text = std::fs::read_to_string(&config).expect("config");
    std::fs::write(
        &config,
        text.replace("[media]\n", "[media]\ntimeout_secs = 2\n"),
    )
    .expect("config");
    let up = up(&dir, &config, "up");
    // Alice sends 7 s of audio, bob echoes it; then both are silent and
    // wait for a BYE that only tandem can send.
    let (alice, bob) = call(&up, &dir, "uac_wait_bye.xml", "uas_answer.xml");
    assert_passed("alice (gets BYE)", &alice);
    assert_passed("bob (gets BYE)", &bob);

    let cdr = newest_cdr(&dir);
    assert_eq!(cdr.disposition, Disposition::Answered);
    assert_eq!(cdr.hangup_side, HangupSide::System);
    let talked = cdr.end_at - cdr.answer_at.expect("answered");
    assert!(
        (7000..15000).contains(&talked),
        "the call lasted {talked} ms: 7 s of audio, then a 2 s timeout"
    );
    wait_for_sbc_idle(&up);
    drop(up);
    let _ = std::fs::remove_dir_all(&dir);
}
