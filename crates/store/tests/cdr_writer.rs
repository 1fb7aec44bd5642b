//! The CDR writer: batches, bad rows, and the spool that carries CDRs over
//! a store outage (simulated on SQLite by a trigger that refuses inserts).

mod common;

use std::time::Duration;

use store::{CdrFilter, CdrWriter, Disposition, HangupSide, NewCdr, Store, Tenant};

fn cdr(t: &Tenant, n: usize) -> NewCdr {
    NewCdr {
        tenant_id: t.id,
        tenant_name: t.name.clone(),
        call_id: format!("call-{n}@example.com"),
        caller: "alice".into(),
        callee: "bob".into(),
        direction: "internal".into(),
        start_at: 1_000_000 + n as i64,
        answer_at: Some(1_001_000 + n as i64),
        end_at: 1_061_000 + n as i64,
        disposition: Disposition::Answered,
        sip_code: 200,
        hangup_side: HangupSide::Caller,
        leg_a: None,
        leg_b: None,
    }
}

async fn all_call_ids(store: &Store) -> Vec<String> {
    let mut ids = Vec::new();
    let mut filter = CdrFilter {
        limit: 1000,
        ..CdrFilter::default()
    };
    loop {
        let page = store.list_cdrs(&filter).await.expect("list");
        let Some(last) = page.last() else { break };
        filter.cursor = Some(last.id);
        ids.extend(page.into_iter().map(|c| c.call_id));
    }
    ids.sort();
    ids
}

async fn refuse_inserts(store_url: &str, refuse: bool) {
    use sqlx::Connection;
    let mut conn = sqlx::SqliteConnection::connect(store_url)
        .await
        .expect("second connection");
    let sql = if refuse {
        "CREATE TRIGGER store_down BEFORE INSERT ON cdrs BEGIN SELECT RAISE(ABORT, 'store down'); END"
    } else {
        "DROP TRIGGER store_down"
    };
    sqlx::query(sql).execute(&mut conn).await.expect("trigger");
    conn.close().await.ok();
}

#[tokio::test]
async fn batches_everything_submitted_and_refuses_bad_rows() {
    for b in common::backends().await {
        let store = b.open().await;
        let t = common::tenant(&store).await;
        let (writer, task) = CdrWriter::start(store.clone(), None);
        for n in 0..1_234 {
            writer.submit(cdr(&t, n));
        }
        let mut bad = cdr(&t, 99_999);
        bad.end_at = 0;
        writer.submit(bad);
        writer.flush().await;
        let stats = writer.stats();
        assert_eq!(
            stats.written.load(std::sync::atomic::Ordering::Relaxed),
            1_234,
            "{}",
            b.name
        );
        assert_eq!(stats.rejected.load(std::sync::atomic::Ordering::Relaxed), 1);
        assert_eq!(stats.queued.load(std::sync::atomic::Ordering::Relaxed), 0);
        let ids = all_call_ids(&store).await;
        assert_eq!(ids.len(), 1_234, "{}", b.name);
        ids.windows(2)
            .for_each(|w| assert_ne!(w[0], w[1], "no CDR twice"));

        // The task ends once the last handle is gone, after writing the rest.
        writer.submit(cdr(&t, 5_000));
        drop(writer);
        tokio::time::timeout(Duration::from_secs(10), task)
            .await
            .expect("writer ends")
            .expect("writer task");
        assert_eq!(all_call_ids(&store).await.len(), 1_235);
    }
}

#[tokio::test]
async fn a_store_outage_goes_to_the_spool_and_back() {
    let dir = tempfile::tempdir().expect("dir");
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("t.db").display());
    let spool = dir.path().join("cdr-spool.jsonl");
    let store = Store::open(&url).await.expect("open");
    let t = common::tenant(&store).await;
    let (writer, _task) = CdrWriter::start(store.clone(), Some(spool.clone()));
    let stat = |w: &CdrWriter| {
        let s = w.stats();
        let l = |a: &std::sync::atomic::AtomicU64| a.load(std::sync::atomic::Ordering::Relaxed);
        (l(&s.written), l(&s.spooled), l(&s.store_failures))
    };

    writer.submit(cdr(&t, 1));
    writer.flush().await;
    assert_eq!(stat(&writer), (1, 0, 0));

    refuse_inserts(&url, true).await;
    for n in 2..=40 {
        writer.submit(cdr(&t, n));
    }
    writer.flush().await;
    let (written, spooled, failures) = stat(&writer);
    assert_eq!((written, spooled), (1, 39));
    assert!(failures >= 1);
    let lines = std::fs::read_to_string(&spool).expect("spool file");
    assert_eq!(lines.lines().count(), 39);
    assert_eq!(all_call_ids(&store).await.len(), 1);

    // The store comes back: the spool drains by itself, in one go, once.
    refuse_inserts(&url, false).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while stat(&writer).0 < 40 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "spool not replayed: {:?}",
            stat(&writer)
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    writer.submit(cdr(&t, 41));
    writer.flush().await;
    assert_eq!(stat(&writer).0, 41);
    assert_eq!(stat(&writer).1, 0);
    assert!(!spool.exists(), "an empty spool is removed");
    let ids = all_call_ids(&store).await;
    assert_eq!(ids.len(), 41);
    ids.windows(2)
        .for_each(|w| assert_ne!(w[0], w[1], "no CDR twice"));
}

#[tokio::test]
async fn a_spool_left_by_an_earlier_run_is_replayed_at_start() {
    let dir = tempfile::tempdir().expect("dir");
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("t.db").display());
    let spool = dir.path().join("cdr-spool.jsonl");
    let store = Store::open(&url).await.expect("open");
    let t = common::tenant(&store).await;

    refuse_inserts(&url, true).await;
    let (writer, task) = CdrWriter::start(store.clone(), Some(spool.clone()));
    for n in 0..3 {
        writer.submit(cdr(&t, n));
    }
    drop(writer);
    tokio::time::timeout(Duration::from_secs(10), task)
        .await
        .expect("writer ends")
        .expect("writer task");
    // A crash mid-append leaves a torn last line: it is skipped, not fatal.
    let mut text = std::fs::read_to_string(&spool).expect("spool");
    assert_eq!(text.lines().count(), 3);
    text.push_str("{\"tenant_id\":1,\"tenant_na");
    std::fs::write(&spool, text).expect("tear");
    refuse_inserts(&url, false).await;

    let (writer, _task) = CdrWriter::start(store.clone(), Some(spool.clone()));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while spool.exists() {
        assert!(tokio::time::Instant::now() < deadline, "spool not replayed");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    writer.flush().await;
    assert_eq!(all_call_ids(&store).await.len(), 3);
}
