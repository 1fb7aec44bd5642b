mod common;

use std::net::SocketAddr;

use store::{Error, NewBinding, NewSubscriber, Store, SubscriberId};

async fn subscriber(store: &Store, username: &str) -> SubscriberId {
    let t = match store.tenant_by_name("Example").await.unwrap() {
        Some(t) => t,
        None => common::tenant(store).await,
    };
    store
        .add_subscriber(&NewSubscriber {
            tenant_id: t.id,
            username,
            password: "secret",
            number: None,
            display_name: None,
            enabled: true,
        })
        .await
        .unwrap()
        .id
}

fn reg<'a>(
    sub: SubscriberId,
    contact: &'a str,
    call_id: &'a str,
    cseq: u32,
    now: i64,
) -> NewBinding<'a> {
    NewBinding {
        subscriber_id: sub,
        contact,
        transport: "UDP",
        source: "203.0.113.7:40123".parse().unwrap(),
        flow_token: None,
        expires_at: now + 3_600_000,
        call_id,
        cseq,
        q_milli: None,
        instance_id: None,
        reg_id: None,
        user_agent: Some("Phone/1.0"),
        now,
    }
}

#[tokio::test]
async fn bindings_upsert_list_remove() {
    for b in common::backends().await {
        let store = b.open().await;
        let alice = subscriber(&store, "alice").await;
        let bob = subscriber(&store, "bob").await;
        let now = 1_700_000_000_000;

        let desk = store
            .upsert_binding(&NewBinding {
                flow_token: Some("tcp-17"),
                q_milli: Some(500),
                instance_id: Some("<urn:uuid:00000000-0000-1000-8000-000A95A0E128>"),
                reg_id: Some(1),
                source: "[2001:db8::7]:5060".parse().unwrap(),
                transport: "tcp",
                ..reg(alice, "sip:alice@192.168.1.2:5060", "reg-1", 1, now)
            })
            .await
            .unwrap();
        assert_eq!(desk.subscriber_id, alice);
        assert_eq!(desk.transport, "tcp");
        assert_eq!(
            desk.source,
            "[2001:db8::7]:5060".parse::<SocketAddr>().unwrap()
        );
        assert_eq!(desk.flow_token.as_deref(), Some("tcp-17"));
        assert_eq!(desk.q_milli, Some(500));
        assert_eq!(desk.reg_id, Some(1));
        assert_eq!(desk.cseq, 1);
        assert_eq!(desk.updated_at, now);
        assert_eq!(desk.user_agent.as_deref(), Some("Phone/1.0"));

        let mobile = store
            .upsert_binding(&reg(alice, "sip:alice@10.0.0.9:5060", "reg-2", 7, now))
            .await
            .unwrap();
        store
            .upsert_binding(&reg(bob, "sip:bob@10.0.0.10", "reg-3", 1, now))
            .await
            .unwrap();

        // Absent q counts as 1.0, so the mobile comes first.
        let list = store.bindings_for(alice, now).await.unwrap();
        assert_eq!(list, vec![mobile.clone(), desk.clone()]);
        assert_eq!(store.count_bindings(now).await.unwrap(), 3);

        // A refresh: same contact, same Call-ID, higher CSeq, new source.
        let refreshed = store
            .upsert_binding(&NewBinding {
                source: "203.0.113.8:40999".parse().unwrap(),
                ..reg(alice, "sip:alice@10.0.0.9:5060", "reg-2", 8, now + 1000)
            })
            .await
            .unwrap();
        assert_eq!(refreshed.id, mobile.id, "same row");
        assert_eq!(refreshed.cseq, 8);
        assert_eq!(refreshed.source.port(), 40999);
        assert_eq!(refreshed.expires_at, now + 1000 + 3_600_000);
        assert_eq!(store.count_bindings(now).await.unwrap(), 3);

        // RFC 3261 §10.3: same Call-ID, CSeq not higher -> refused, unchanged.
        for cseq in [8, 3] {
            assert!(matches!(
                store
                    .upsert_binding(&reg(
                        alice,
                        "sip:alice@10.0.0.9:5060",
                        "reg-2",
                        cseq,
                        now + 2000
                    ))
                    .await,
                Err(Error::OutOfOrder)
            ));
        }
        let still = store.bindings_for(alice, now).await.unwrap();
        assert!(still.contains(&refreshed));
        // A different Call-ID (the phone rebooted) may use any CSeq.
        let rebooted = store
            .upsert_binding(&reg(
                alice,
                "sip:alice@10.0.0.9:5060",
                "reg-9",
                1,
                now + 3000,
            ))
            .await
            .unwrap();
        assert_eq!(rebooted.id, mobile.id);
        assert_eq!(rebooted.call_id, "reg-9");

        assert!(
            store
                .remove_binding(alice, "sip:alice@192.168.1.2:5060")
                .await
                .unwrap()
        );
        assert!(
            !store
                .remove_binding(alice, "sip:alice@192.168.1.2:5060")
                .await
                .unwrap()
        );
        assert_eq!(store.bindings_for(alice, now).await.unwrap().len(), 1);
        assert_eq!(store.remove_all_bindings(alice).await.unwrap(), 1);
        assert!(store.bindings_for(alice, now).await.unwrap().is_empty());
        assert_eq!(store.count_bindings(now).await.unwrap(), 1);

        // Removing the subscriber removes its bindings.
        store.remove_subscriber(bob).await.unwrap();
        assert_eq!(store.count_bindings(now).await.unwrap(), 0);
        b.finish(store).await;
    }
}

#[tokio::test]
async fn bindings_expire() {
    for b in common::backends().await {
        let store = b.open().await;
        let alice = subscriber(&store, "alice").await;
        let now = 1_000_000;
        store
            .upsert_binding(&NewBinding {
                expires_at: now + 60_000,
                ..reg(alice, "sip:alice@short", "a", 1, now)
            })
            .await
            .unwrap();
        store
            .upsert_binding(&NewBinding {
                expires_at: now + 3_600_000,
                ..reg(alice, "sip:alice@long", "b", 1, now)
            })
            .await
            .unwrap();
        assert_eq!(store.count_bindings(now).await.unwrap(), 2);

        let later = now + 60_000;
        // Expired at `expires_at` itself: not returned, not counted.
        let live = store.bindings_for(alice, later).await.unwrap();
        assert_eq!(live.len(), 1);
        assert_eq!(live[0].contact, "sip:alice@long");
        assert_eq!(store.count_bindings(later).await.unwrap(), 1);

        // An expired binding no longer guards its CSeq: the phone may start over.
        store
            .upsert_binding(&NewBinding {
                expires_at: later + 60_000,
                ..reg(alice, "sip:alice@short", "a", 1, later)
            })
            .await
            .unwrap();
        assert_eq!(store.count_bindings(later).await.unwrap(), 2);

        let much_later = now + 7_200_000;
        assert_eq!(store.expire_bindings(much_later).await.unwrap(), 2);
        assert_eq!(store.expire_bindings(much_later).await.unwrap(), 0);
        assert!(store.bindings_for(alice, now).await.unwrap().is_empty());
        b.finish(store).await;
    }
}

#[tokio::test]
async fn bindings_validation() {
    for b in common::backends().await {
        let store = b.open().await;
        let alice = subscriber(&store, "alice").await;
        let now = 5;
        let bad = [
            reg(alice, "", "x", 1, now),
            reg(alice, "sip:a\r\nb", "x", 1, now),
            reg(alice, "sip:a", "", 1, now),
            NewBinding {
                transport: "carrier-pigeon",
                ..reg(alice, "sip:a", "x", 1, now)
            },
            NewBinding {
                q_milli: Some(1001),
                ..reg(alice, "sip:a", "x", 1, now)
            },
        ];
        for nb in &bad {
            assert!(
                matches!(store.upsert_binding(nb).await, Err(Error::Invalid(_))),
                "{nb:?}"
            );
        }
        assert!(matches!(
            store
                .upsert_binding(&reg(SubscriberId(424_242), "sip:a", "x", 1, now))
                .await,
            Err(Error::NotFound { what: "subscriber" })
        ));
        assert_eq!(store.count_bindings(0).await.unwrap(), 0);
        b.finish(store).await;
    }
}
