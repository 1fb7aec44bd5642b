//! A whole call through `tandem up` with real peers: SIPp registers bob
//! with digest auth, another SIPp (alice) calls him — challenged with 407,
//! answered with credentials — and plays 7 s of PCMA audio, which bob's
//! SIPp echoes back. The audio must cross tandem's SBC both ways, and the
//! CDR must record the call and the packets of each leg.

mod common;

use common::{
    alice_calls_bob, cdr_leg_packets, demo_platform, free_udp_port, http_get, newest_cdr_row, up,
};

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

fn scenario(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/sipp")
        .join(name)
}

fn sipp(args: &[String]) -> std::process::Output {
    Command::new("timeout")
        .args(["-s", "KILL", "60", "sipp"])
        .args(["-nostdin", "-i", "127.0.0.1", "-timeout", "50s"])
        .args(args)
        .output()
        .expect("sipp")
}

fn metric(text: &str, name: &str) -> u64 {
    text.lines()
        .find_map(|l| l.strip_prefix(name).and_then(|v| v.trim().parse().ok()))
        .unwrap_or(0)
}

/// Until the separate SBC process has joined the brain.
fn wait_for_sbc(api: SocketAddr) {
    for _ in 0..100 {
        if http_get(api, "/metrics").contains("tandem_nodes{role=\"sbc\",state=\"live\"} 1") {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("the SBC never joined:\n{}", http_get(api, "/metrics"));
}

#[test]
fn registered_callee_gets_a_call_with_audio_through_the_sbc() {
    call_through("up", 32000);
}

#[test]
fn the_same_call_with_brain_and_sbc_as_separate_processes() {
    call_through("brain", 33000);
}

fn call_through(role: &str, media_base: u16) {
    if Command::new("sipp").arg("-v").output().is_err() {
        assert!(std::env::var_os("CI").is_none(), "sipp is required in CI");
        eprintln!("sipp not installed: skipping");
        return;
    }
    let (dir, config) = demo_platform(&format!("up-call-{role}"), media_base);
    let up = up(&dir, &config, role);
    if up.sbc.is_some() {
        wait_for_sbc(up.api);
    }
    let _ = up.control;
    let target = up.sip.to_string();

    // Bob registers from the port his UAS will answer on.
    let bob_port = free_udp_port();
    let register = std::fs::read_to_string(scenario("register_auth.xml"))
        .expect("scenario")
        .replace("EXPECT", "200");
    let register_file = dir.join("register.xml");
    std::fs::write(&register_file, register).expect("write");
    let out = sipp(&[
        target.clone(),
        "-sf".into(),
        register_file.display().to_string(),
        "-s".into(),
        "bob".into(),
        "-au".into(),
        "bob".into(),
        "-ap".into(),
        "bob-pw".into(),
        "-p".into(),
        bob_port.to_string(),
        "-m".into(),
        "1".into(),
    ]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "bob registers: {}",
        String::from_utf8_lossy(&out.stdout)
    );

    let bob = Command::new("timeout")
        .args([
            "-s",
            "KILL",
            "60",
            "sipp",
            "-nostdin",
            "-i",
            "127.0.0.1",
            "-timeout",
            "50s",
        ])
        .args(["-sf", &scenario("uas_answer.xml").display().to_string()])
        .args([
            "-p",
            &bob_port.to_string(),
            "-mp",
            &free_udp_port().to_string(),
            "-rtp_echo",
            "-m",
            "1",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("bob's uas");
    std::thread::sleep(Duration::from_millis(500));

    let alice = sipp(&alice_calls_bob(target, &scenario("uac_auth_rtp.xml")));
    let bob = bob.wait_with_output().expect("bob");
    assert_eq!(
        alice.status.code(),
        Some(0),
        "alice's call: {}",
        String::from_utf8_lossy(&alice.stdout)
    );
    assert_eq!(
        bob.status.code(),
        Some(0),
        "bob's side: {}",
        String::from_utf8_lossy(&bob.stdout)
    );

    // The CDR records it, with packets on both legs.
    let row = newest_cdr_row(&dir);
    assert!(
        row.contains("answered") && row.contains(" 200 "),
        "CDR: {row}"
    );
    // The audio crossed the SBC: 7 s of 30 ms packets is 233 each way.
    let metrics = http_get(up.api, "/metrics");
    // In one process /metrics carries the SBC's counters too; on its own
    // the SBC serves them itself.
    let sbc_text = match up.sbc_metrics {
        Some(addr) => http_get(addr, "/metrics"),
        None => metrics.clone(),
    };
    let relayed = metric(&sbc_text, "sbc_packets_out_total");
    assert!(relayed >= 400, "SBC relayed {relayed} packets:\n{sbc_text}");
    assert!(
        metrics.contains("tandem_calls_total{disposition=\"answered\"} 1"),
        "{metrics}"
    );

    for received in cdr_leg_packets(&row) {
        assert!(
            received >= 200,
            "a leg received only {received} packets: {row}"
        );
    }
    drop(up);
    let _ = std::fs::remove_dir_all(&dir);
}
