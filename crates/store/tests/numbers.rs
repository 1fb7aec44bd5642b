mod common;

use store::{Error, NumberKind, TenantId};

#[tokio::test]
async fn numbers_crud() {
    for b in common::backends().await {
        let store = b.open().await;
        let t = common::tenant(&store).await;
        let other = store.add_tenant("Other", "other.example").await.unwrap();

        let bridge = store
            .add_number(t.id, "800", NumberKind::Conference, "main-bridge")
            .await
            .unwrap();
        assert_eq!(bridge.kind, NumberKind::Conference);
        assert_eq!(bridge.target, "main-bridge");
        let ivr = store
            .add_number(t.id, "+4930999", NumberKind::Script, "ivr.lua")
            .await
            .unwrap();
        let alias = store
            .add_number(t.id, "700", NumberKind::Subscriber, "alice")
            .await
            .unwrap();
        // The same number in another tenant is another number.
        store
            .add_number(other.id, "800", NumberKind::Script, "other.lua")
            .await
            .unwrap();

        assert_eq!(
            store.list_numbers(t.id).await.unwrap(),
            vec![ivr.clone(), alias.clone(), bridge.clone()]
        );
        assert_eq!(
            store.find_number(t.id, "800").await.unwrap(),
            Some(bridge.clone())
        );
        assert_eq!(store.find_number(t.id, "801").await.unwrap(), None);
        assert_eq!(
            store
                .find_number(other.id, "800")
                .await
                .unwrap()
                .map(|n| n.kind),
            Some(NumberKind::Script)
        );

        let e = store
            .add_number(t.id, "800", NumberKind::Script, "x")
            .await
            .unwrap_err();
        assert!(
            matches!(&e, Error::Conflict { what } if what.contains("number")),
            "{e}"
        );
        assert!(matches!(
            store.add_number(t.id, "8oo", NumberKind::Script, "x").await,
            Err(Error::Invalid(_))
        ));
        assert!(matches!(
            store.add_number(t.id, "801", NumberKind::Script, "").await,
            Err(Error::Invalid(_))
        ));
        assert!(matches!(
            store
                .add_number(TenantId(777_777), "801", NumberKind::Script, "x")
                .await,
            Err(Error::NotFound { what: "tenant" })
        ));

        store.remove_number(bridge.id).await.unwrap();
        assert_eq!(store.find_number(t.id, "800").await.unwrap(), None);
        assert!(matches!(
            store.remove_number(bridge.id).await,
            Err(Error::NotFound { .. })
        ));
        b.finish(store).await;
    }
}
