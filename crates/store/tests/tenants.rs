mod common;

use store::{Disposition, Error, HangupSide, NewCdr, NewSubscriber, NumberKind};

#[tokio::test]
async fn tenant_crud() {
    for b in common::backends().await {
        let store = b.open().await;
        assert!(store.list_tenants().await.unwrap().is_empty());

        let acme = store.add_tenant("Acme", "SIP.Acme.example").await.unwrap();
        assert_eq!(
            acme.domain, "sip.acme.example",
            "domain is stored lower-case"
        );
        let solo = store.add_tenant("Solo box", "192.0.2.10").await.unwrap();
        assert!(acme.created_at > 0);

        let all = store.list_tenants().await.unwrap();
        assert_eq!(all, vec![acme.clone(), solo.clone()]);
        assert_eq!(store.tenant(acme.id).await.unwrap(), acme);
        assert_eq!(
            store.tenant_by_name("Acme").await.unwrap(),
            Some(acme.clone())
        );
        assert_eq!(
            store.tenant_by_name("acme").await.unwrap(),
            None,
            "names are exact"
        );
        assert_eq!(
            store.tenant_by_domain("sip.ACME.example").await.unwrap(),
            Some(acme.clone())
        );
        assert_eq!(
            store.tenant_by_domain("192.0.2.10").await.unwrap(),
            Some(solo.clone())
        );
        assert_eq!(store.tenant_by_domain("nope.example").await.unwrap(), None);

        store.remove_tenant(solo.id).await.unwrap();
        assert!(matches!(
            store.tenant(solo.id).await,
            Err(Error::NotFound { what: "tenant" })
        ));
        assert!(matches!(
            store.remove_tenant(solo.id).await,
            Err(Error::NotFound { .. })
        ));
        assert_eq!(store.list_tenants().await.unwrap(), vec![acme]);
        b.finish(store).await;
    }
}

#[tokio::test]
async fn tenant_conflicts_and_validation() {
    for b in common::backends().await {
        let store = b.open().await;
        store.add_tenant("Acme", "acme.example").await.unwrap();

        let e = store.add_tenant("Acme", "other.example").await.unwrap_err();
        assert!(
            matches!(&e, Error::Conflict { what } if what.contains("name")),
            "{e}"
        );
        // Case-insensitive domain uniqueness.
        let e = store.add_tenant("Other", "ACME.example").await.unwrap_err();
        assert!(
            matches!(&e, Error::Conflict { what } if what.contains("domain")),
            "{e}"
        );

        for (name, domain) in [
            ("", "x.example"),
            ("Bad\u{1}name", "x.example"),
            (" padded", "x.example"),
            ("Fine", ""),
            ("Fine", "has space.example"),
            ("Fine", "ctl\u{7f}.example"),
        ] {
            assert!(
                matches!(store.add_tenant(name, domain).await, Err(Error::Invalid(_))),
                "{name:?} {domain:?}"
            );
        }
        assert!(matches!(
            store.add_tenant(&"n".repeat(129), "x.example").await,
            Err(Error::Invalid(_))
        ));
        assert!(matches!(
            store.add_tenant("Fine", &"d".repeat(254)).await,
            Err(Error::Invalid(_))
        ));
        assert_eq!(store.list_tenants().await.unwrap().len(), 1);
        b.finish(store).await;
    }
}

#[tokio::test]
async fn tenant_removal_is_refused_while_in_use_and_cdrs_outlive_it() {
    for b in common::backends().await {
        let store = b.open().await;
        let t = common::tenant(&store).await;
        let alice = store
            .add_subscriber(&NewSubscriber {
                tenant_id: t.id,
                username: "alice",
                password: "secret",
                number: None,
                display_name: None,
                enabled: true,
            })
            .await
            .unwrap();
        let cdr = store
            .insert_cdr(&NewCdr {
                tenant_id: t.id,
                tenant_name: t.name.clone(),
                call_id: "c1@example.com".into(),
                caller: "alice".into(),
                callee: "bob".into(),
                direction: "internal".into(),
                start_at: 1_000,
                answer_at: None,
                end_at: 2_000,
                disposition: Disposition::NoAnswer,
                sip_code: 480,
                hangup_side: HangupSide::System,
                leg_a: None,
                leg_b: None,
            })
            .await
            .unwrap();

        let e = store.remove_tenant(t.id).await.unwrap_err();
        assert!(matches!(e, Error::Conflict { .. }), "{e}");
        store.remove_subscriber(alice.id).await.unwrap();

        let n = store
            .add_number(t.id, "800", NumberKind::Conference, "main-bridge")
            .await
            .unwrap();
        assert!(matches!(
            store.remove_tenant(t.id).await,
            Err(Error::Conflict { .. })
        ));
        store.remove_number(n.id).await.unwrap();

        store.remove_tenant(t.id).await.unwrap();
        let cdrs = store.list_cdrs(&Default::default()).await.unwrap();
        assert_eq!(cdrs.len(), 1);
        assert_eq!(cdrs[0].id, cdr);
        assert_eq!(cdrs[0].tenant_id, t.id);
        assert_eq!(cdrs[0].tenant_name, "Example");
        b.finish(store).await;
    }
}

#[tokio::test]
async fn every_directory_write_moves_the_version() {
    for b in common::backends().await {
        let store = b.open().await;
        let mut last = store.directory_version().await.unwrap();
        let mut moved = |v: i64, what: &str| {
            assert!(
                v > last,
                "{}: {what} did not move the directory version",
                b.name
            );
            last = v;
        };
        let t = store.add_tenant("v", "v.example.com").await.unwrap();
        moved(store.directory_version().await.unwrap(), "add_tenant");
        let s = store
            .add_subscriber(&NewSubscriber {
                tenant_id: t.id,
                username: "alice",
                password: "secret-1",
                number: Some("1001"),
                display_name: None,
                enabled: true,
            })
            .await
            .unwrap();
        moved(store.directory_version().await.unwrap(), "add_subscriber");
        store.set_password(s.id, "secret-2").await.unwrap();
        moved(store.directory_version().await.unwrap(), "set_password");
        store.set_subscriber_enabled(s.id, false).await.unwrap();
        moved(
            store.directory_version().await.unwrap(),
            "set_subscriber_enabled",
        );
        let n = store
            .add_number(t.id, "3000", NumberKind::Conference, "room")
            .await
            .unwrap();
        moved(store.directory_version().await.unwrap(), "add_number");
        store.remove_number(n.id).await.unwrap();
        moved(store.directory_version().await.unwrap(), "remove_number");
        store.remove_subscriber(s.id).await.unwrap();
        moved(
            store.directory_version().await.unwrap(),
            "remove_subscriber",
        );
        store.remove_tenant(t.id).await.unwrap();
        moved(store.directory_version().await.unwrap(), "remove_tenant");
        // A refused write leaves it alone.
        let before = store.directory_version().await.unwrap();
        assert!(store.remove_tenant(t.id).await.is_err());
        assert_eq!(store.directory_version().await.unwrap(), before);
    }
}
