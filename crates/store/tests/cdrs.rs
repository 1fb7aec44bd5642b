mod common;

use store::{Cdr, CdrFilter, CdrSummary, Disposition, Error, HangupSide, LegStats, NewCdr, Tenant};

fn leg(seed: u64) -> LegStats {
    LegStats {
        packets_sent: 1500 + seed,
        packets_received: 1490 + seed,
        bytes_sent: 258_000 + seed,
        bytes_received: 256_280 + seed,
        packets_lost: 10,
        jitter_us: 2_500,
        mos: Some(4.2),
    }
}

fn answered(t: &Tenant, call_id: &str, start_at: i64) -> NewCdr {
    NewCdr {
        tenant_id: t.id,
        tenant_name: t.name.clone(),
        call_id: call_id.into(),
        caller: "sip:alice@example.com".into(),
        callee: "+4930123456".into(),
        direction: "outbound:carrier-x".into(),
        start_at,
        answer_at: Some(start_at + 4_000),
        end_at: start_at + 64_000,
        disposition: Disposition::Answered,
        sip_code: 200,
        hangup_side: HangupSide::Callee,
        leg_a: Some(leg(1)),
        leg_b: Some(leg(2)),
    }
}

fn unanswered(t: &Tenant, call_id: &str, start_at: i64) -> NewCdr {
    NewCdr {
        answer_at: None,
        end_at: start_at + 20_000,
        disposition: Disposition::Busy,
        sip_code: 486,
        hangup_side: HangupSide::Callee,
        leg_a: None,
        leg_b: None,
        ..answered(t, call_id, start_at)
    }
}

#[tokio::test]
async fn cdr_insert_and_read_back() {
    for b in common::backends().await {
        let store = b.open().await;
        let t = common::tenant(&store).await;
        let a = answered(&t, "call-1@example.com", 1_000_000);
        let id = store.insert_cdr(&a).await.unwrap();
        let u = NewCdr {
            leg_a: Some(LegStats {
                mos: None,
                ..leg(0)
            }),
            ..unanswered(&t, "call-2@example.com", 2_000_000)
        };
        let id2 = store.insert_cdr(&u).await.unwrap();
        assert!(id2 > id);

        let list = store.list_cdrs(&CdrFilter::default()).await.unwrap();
        assert_eq!(list.len(), 2);
        let expect = Cdr {
            id,
            tenant_id: t.id,
            tenant_name: "Example".into(),
            call_id: "call-1@example.com".into(),
            caller: "sip:alice@example.com".into(),
            callee: "+4930123456".into(),
            direction: "outbound:carrier-x".into(),
            start_at: 1_000_000,
            answer_at: Some(1_004_000),
            end_at: 1_064_000,
            duration_ms: 60_000,
            disposition: Disposition::Answered,
            sip_code: 200,
            hangup_side: HangupSide::Callee,
            leg_a: Some(leg(1)),
            leg_b: Some(leg(2)),
        };
        assert_eq!(list[1], expect);
        assert_eq!(list[0].id, id2, "newest first");
        assert_eq!(list[0].duration_ms, 0, "not answered: nothing billable");
        assert_eq!(list[0].disposition, Disposition::Busy);
        assert_eq!(list[0].sip_code, 486);
        assert_eq!(
            list[0].leg_a,
            Some(LegStats {
                mos: None,
                ..leg(0)
            })
        );
        assert_eq!(list[0].leg_b, None);

        assert_eq!(
            store.cdr_summary(&CdrFilter::default()).await.unwrap(),
            CdrSummary {
                calls: 2,
                answered: 1,
                billable_ms: 60_000
            }
        );
        b.finish(store).await;
    }
}

#[tokio::test]
async fn cdr_insert_is_atomic() {
    for b in common::backends().await {
        let store = b.open().await;
        let t = common::tenant(&store).await;
        // The CDR row and leg A go in; leg B breaks the MOS CHECK constraint.
        let broken = NewCdr {
            leg_b: Some(LegStats {
                mos: Some(9.5),
                ..leg(2)
            }),
            ..answered(&t, "doomed@example.com", 1_000)
        };
        let e = store.insert_cdr(&broken).await.unwrap_err();
        assert!(matches!(e, Error::Invalid(_)), "{e}");
        assert!(
            store
                .list_cdrs(&CdrFilter::default())
                .await
                .unwrap()
                .is_empty()
        );
        assert_eq!(
            store.cdr_summary(&CdrFilter::default()).await.unwrap(),
            CdrSummary::default()
        );

        // Refused before any SQL: bad times, bad counters.
        let early_end = NewCdr {
            end_at: 500,
            ..answered(&t, "x", 1_000)
        };
        assert!(matches!(
            store.insert_cdr(&early_end).await,
            Err(Error::Invalid(_))
        ));
        let answer_after_end = NewCdr {
            answer_at: Some(10_000_000),
            ..answered(&t, "x", 1_000)
        };
        assert!(matches!(
            store.insert_cdr(&answer_after_end).await,
            Err(Error::Invalid(_))
        ));
        let huge = NewCdr {
            leg_a: Some(LegStats {
                bytes_sent: u64::MAX,
                ..leg(1)
            }),
            ..answered(&t, "x", 1_000)
        };
        assert!(matches!(
            store.insert_cdr(&huge).await,
            Err(Error::Invalid(_))
        ));

        // The store still works afterwards (no transaction left open).
        store
            .insert_cdr(&answered(&t, "fine", 1_000))
            .await
            .unwrap();
        assert_eq!(
            store.list_cdrs(&CdrFilter::default()).await.unwrap().len(),
            1
        );
        b.finish(store).await;
    }
}

#[tokio::test]
async fn cdr_cursor_pagination_and_filters() {
    for b in common::backends().await {
        let store = b.open().await;
        let t1 = common::tenant(&store).await;
        let t2 = store.add_tenant("Other", "other.example").await.unwrap();
        let call_ids: Vec<String> = (0..25).map(|i| format!("call-{i}")).collect();
        let mut ids = Vec::new();
        for (i, call_id) in call_ids.iter().enumerate() {
            let t = if i % 5 == 4 { &t2 } else { &t1 };
            let start = 10_000 * i as i64;
            let cdr = if i % 2 == 0 {
                answered(t, call_id, start)
            } else {
                unanswered(t, call_id, start)
            };
            ids.push(store.insert_cdr(&cdr).await.unwrap());
        }

        // Walk everything in pages of 7, newest first.
        let mut seen = Vec::new();
        let mut filter = CdrFilter {
            limit: 7,
            ..CdrFilter::default()
        };
        loop {
            let page = store.list_cdrs(&filter).await.unwrap();
            assert!(page.len() <= 7);
            let Some(last) = page.last() else { break };
            filter.cursor = Some(last.id);
            seen.extend(page.iter().map(|c| c.id));
        }
        let mut newest_first = ids.clone();
        newest_first.reverse();
        assert_eq!(seen, newest_first);

        // By tenant: 20 for t1, 5 for t2.
        let t2_only = store
            .list_cdrs(&CdrFilter {
                tenant: Some(t2.id),
                ..CdrFilter::default()
            })
            .await
            .unwrap();
        assert_eq!(t2_only.len(), 5);
        assert!(t2_only.iter().all(|c| c.tenant_name == "Other"));

        // By start time: [50_000, 120_000) is calls 5..=11.
        let window = store
            .list_cdrs(&CdrFilter {
                since: Some(50_000),
                until: Some(120_000),
                ..CdrFilter::default()
            })
            .await
            .unwrap();
        let got: Vec<_> = window.iter().map(|c| c.call_id.as_str()).collect();
        assert_eq!(
            got,
            [
                "call-11", "call-10", "call-9", "call-8", "call-7", "call-6", "call-5"
            ]
        );

        // All filters at once, with a cursor.
        let combined = store
            .list_cdrs(&CdrFilter {
                tenant: Some(t1.id),
                since: Some(50_000),
                until: Some(120_000),
                limit: 2,
                cursor: Some(ids[10]),
            })
            .await
            .unwrap();
        let got: Vec<_> = combined.iter().map(|c| c.call_id.as_str()).collect();
        assert_eq!(got, ["call-8", "call-7"]);

        // Summary over t1: 20 calls, answered are the even ones not at i%5==4.
        let s = store
            .cdr_summary(&CdrFilter {
                tenant: Some(t1.id),
                ..CdrFilter::default()
            })
            .await
            .unwrap();
        let answered_t1 = (0..25).filter(|i| i % 5 != 4 && i % 2 == 0).count() as i64;
        assert_eq!(
            s,
            CdrSummary {
                calls: 20,
                answered: answered_t1,
                billable_ms: answered_t1 * 60_000
            }
        );

        // Limit 0 means the default page of 100.
        assert_eq!(
            store.list_cdrs(&CdrFilter::default()).await.unwrap().len(),
            25
        );
        b.finish(store).await;
    }
}
