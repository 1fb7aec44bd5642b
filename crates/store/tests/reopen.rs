mod common;

use store::{CdrFilter, Disposition, HangupSide, NewBinding, NewCdr, NewSubscriber, Store};

#[tokio::test]
async fn data_survives_close_and_reopen() {
    for b in common::backends().await {
        let store = b.open().await;
        let t = common::tenant(&store).await;
        let alice = store
            .add_subscriber(&NewSubscriber {
                tenant_id: t.id,
                username: "alice",
                password: "secret",
                number: Some("1001"),
                display_name: None,
                enabled: true,
            })
            .await
            .unwrap();
        let binding = store
            .upsert_binding(&NewBinding {
                subscriber_id: alice.id,
                contact: "sip:alice@198.51.100.4:5060;transport=tcp",
                transport: "tcp",
                source: "198.51.100.4:61000".parse().unwrap(),
                flow_token: Some("conn-42"),
                expires_at: 10_000_000,
                call_id: "reg@alice",
                cseq: 3,
                q_milli: None,
                instance_id: None,
                reg_id: None,
                user_agent: None,
                now: 1_000,
            })
            .await
            .unwrap();
        let cdr = store
            .insert_cdr(&NewCdr {
                tenant_id: t.id,
                tenant_name: t.name.clone(),
                call_id: "c@x".into(),
                caller: "alice".into(),
                callee: "bob".into(),
                direction: "internal".into(),
                start_at: 0,
                answer_at: None,
                end_at: 1,
                disposition: Disposition::Cancelled,
                sip_code: 487,
                hangup_side: HangupSide::Caller,
                leg_a: None,
                leg_b: None,
            })
            .await
            .unwrap();
        // Opening the same store twice at once is fine (migrations are idempotent).
        let second = Store::open(&b.url).await.unwrap();
        second.close().await;
        store.close().await;

        let store = b.open().await;
        assert_eq!(
            store.tenant_by_domain("example.com").await.unwrap(),
            Some(t)
        );
        assert_eq!(
            store.find_subscriber("example.com", "1001").await.unwrap(),
            Some(alice.clone())
        );
        assert_eq!(
            store.bindings_for(alice.id, 2_000).await.unwrap(),
            vec![binding]
        );
        let cdrs = store.list_cdrs(&CdrFilter::default()).await.unwrap();
        assert_eq!(cdrs.len(), 1);
        assert_eq!(cdrs[0].id, cdr);
        b.finish(store).await;
    }
}

#[tokio::test]
async fn open_in_dir_creates_the_directory_and_file() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("nested").join("data dir");
    let store = Store::open_in_dir(&data).await.unwrap();
    assert_eq!(store.backend_name(), "sqlite");
    store.add_tenant("Solo", "192.0.2.1").await.unwrap();
    // WAL mode: the write went to the log beside the file.
    assert!(data.join("tandem.db-wal").is_file());
    store.close().await;
    assert!(data.join("tandem.db").is_file());

    let store = Store::open_in_dir(&data).await.unwrap();
    assert_eq!(store.list_tenants().await.unwrap().len(), 1);
    let url = format!("sqlite://{}", data.join("tandem.db").display());
    let again = Store::open(&url).await.unwrap();
    assert_eq!(again.list_tenants().await.unwrap().len(), 1);
    again.close().await;
    store.close().await;
    assert!(matches!(
        Store::open("mysql://nope").await,
        Err(store::Error::Invalid(_))
    ));
}
