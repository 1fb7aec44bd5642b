//! The provisioning commands an operator types, against a fresh data
//! directory: tenants, subscribers, their errors, and CDR listing.

use std::path::Path;
use std::process::{Command, Output};

fn tandem(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tandem"))
        .arg("--data-dir")
        .arg(dir)
        .args(args)
        .output()
        .expect("run tandem")
}

fn ok(dir: &Path, args: &[&str]) -> String {
    let out = tandem(dir, args);
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn fails(dir: &Path, args: &[&str]) -> String {
    let out = tandem(dir, args);
    assert_eq!(out.status.code(), Some(2), "{args:?} should fail");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn temp_dir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("tandem-prov-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

#[test]
fn tenants_and_subscribers() {
    let dir = temp_dir("subs");
    assert!(
        ok(&dir, &["tenant", "add", "acme", "--domain", "Acme.Test"]).contains("domain acme.test")
    );
    assert!(fails(&dir, &["tenant", "add", "acme", "--domain", "x.test"]).contains("name exists"));
    assert!(
        fails(&dir, &["tenant", "add", "other", "--domain", "acme.test"]).contains("domain exists")
    );
    ok(
        &dir,
        &[
            "subscriber",
            "add",
            "acme",
            "alice",
            "--password",
            "s3cret",
            "--number",
            "1001",
        ],
    );
    ok(
        &dir,
        &["subscriber", "add", "acme", "bob", "--password", "pw"],
    );
    assert!(
        fails(
            &dir,
            &[
                "subscriber",
                "add",
                "acme",
                "carol",
                "--password",
                "pw",
                "--number",
                "1001"
            ]
        )
        .contains("number")
    );
    assert!(
        fails(
            &dir,
            &["subscriber", "add", "nosuch", "dave", "--password", "pw"]
        )
        .contains("no tenant")
    );
    let list = ok(&dir, &["subscriber", "list", "acme"]);
    assert!(
        list.lines()
            .any(|l| l.starts_with("alice") && l.contains("1001")),
        "{list}"
    );
    assert!(list.lines().any(|l| l.starts_with("bob")), "{list}");
    // A tenant with subscribers cannot be removed; without them it can.
    assert!(fails(&dir, &["tenant", "remove", "acme"]).contains("subscribers"));
    ok(&dir, &["subscriber", "remove", "acme", "alice"]);
    ok(&dir, &["subscriber", "remove", "acme", "bob"]);
    assert!(fails(&dir, &["subscriber", "remove", "acme", "bob"]).contains("no subscriber"));
    ok(&dir, &["tenant", "remove", "acme"]);
    assert!(!ok(&dir, &["tenant", "list"]).contains("acme"));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn cdr_list_shows_what_the_store_holds() {
    let dir = temp_dir("cdr");
    ok(&dir, &["tenant", "add", "acme", "--domain", "acme.test"]);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("rt");
    rt.block_on(async {
        let store = store::Store::open_in_dir(&dir).await.expect("store");
        let t = store
            .tenant_by_name("acme")
            .await
            .expect("query")
            .expect("tenant");
        let leg = store::LegStats {
            packets_sent: 500,
            packets_received: 498,
            packets_lost: 2,
            ..Default::default()
        };
        store
            .insert_cdr(&store::NewCdr {
                tenant_id: t.id,
                tenant_name: t.name.clone(),
                call_id: "c1".into(),
                caller: "alice".into(),
                callee: "bob".into(),
                direction: "internal".into(),
                start_at: 1_795_322_820_000,
                answer_at: Some(1_795_322_822_000),
                end_at: 1_795_322_832_500,
                disposition: store::Disposition::Answered,
                sip_code: 200,
                hangup_side: store::HangupSide::Callee,
                leg_a: Some(leg),
                leg_b: Some(leg),
            })
            .await
            .expect("cdr");
        store.close().await;
    });
    let list = ok(&dir, &["cdr", "list", "--tenant", "acme"]);
    let row = list.lines().nth(1).expect("one row");
    for want in [
        "2026-11-22 04:47:00",
        "alice",
        "bob",
        "10.5",
        "answered",
        "200",
        "callee",
        "498/2",
    ] {
        assert!(row.contains(want), "{want} missing in {row}");
    }

    // `tandem cdr list | head -1`: the reader goes away first; the list
    // ends quietly instead of panicking on the broken pipe.
    let mut child = Command::new(env!("CARGO_BIN_EXE_tandem"))
        .arg("--data-dir")
        .arg(&dir)
        .args(["cdr", "list"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    drop(child.stdout.take());
    let out = child.wait_with_output().expect("wait");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    let _ = std::fs::remove_dir_all(&dir);
}
