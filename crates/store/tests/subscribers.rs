mod common;

use md5::{Digest, Md5};
use store::{Error, NewSubscriber, TenantId};

fn new<'a>(tenant_id: TenantId, username: &'a str, number: Option<&'a str>) -> NewSubscriber<'a> {
    NewSubscriber {
        tenant_id,
        username,
        password: "secret",
        number,
        display_name: None,
        enabled: true,
    }
}

fn md5_hex(s: &str) -> String {
    Md5::digest(s.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[tokio::test]
async fn ha1_values_are_the_standard_ones() {
    for b in common::backends().await {
        let store = b.open().await;
        // Upper-case on input: the realm is the stored, lower-case domain.
        let t = store.add_tenant("Example", "Example.COM").await.unwrap();
        let alice = store
            .add_subscriber(&new(t.id, "alice", None))
            .await
            .unwrap();
        // Computed outside this code base (Python's hashlib), and again here.
        assert_eq!(alice.ha1_md5, "b1726872c344b6dc8365b774f8fd6412");
        assert_eq!(alice.ha1_md5, md5_hex("alice:example.com:secret"));
        assert_eq!(
            alice.ha1_sha256,
            "ed8925b20f9a77b8f8f8d5f8e4467fe32b866f7208ab9e4b20595e9821a0fdee"
        );

        store.set_password(alice.id, "n3w-pass").await.unwrap();
        let again = store.subscriber(alice.id).await.unwrap();
        assert_eq!(again.ha1_md5, md5_hex("alice:example.com:n3w-pass"));
        assert_eq!(
            again.ha1_sha256,
            "4da227fa2071ff05d2e0327cf0f701b3cff50e379d878420fd5e30a0f13f84e6"
        );
        assert!(again.updated_at >= alice.updated_at);
        assert_eq!(
            store::digest_ha1("alice", "example.com", "secret"),
            (alice.ha1_md5.clone(), alice.ha1_sha256.clone())
        );
        b.finish(store).await;
    }
}

#[tokio::test]
async fn subscriber_crud_and_lookup() {
    for b in common::backends().await {
        let store = b.open().await;
        let t = common::tenant(&store).await;
        let other = store.add_tenant("Other", "other.example").await.unwrap();

        let alice = store
            .add_subscriber(&NewSubscriber {
                display_name: Some("Alice Liddell"),
                ..new(t.id, "alice", Some("+4930123456"))
            })
            .await
            .unwrap();
        assert_eq!(alice.tenant_id, t.id);
        assert_eq!(alice.number.as_deref(), Some("+4930123456"));
        assert_eq!(alice.display_name.as_deref(), Some("Alice Liddell"));
        assert!(alice.enabled);
        let bob = store
            .add_subscriber(&new(t.id, "bob", Some("1002")))
            .await
            .unwrap();
        let carol = store
            .add_subscriber(&new(t.id, "carol", None))
            .await
            .unwrap();
        // Same username in another tenant is fine.
        let alice2 = store
            .add_subscriber(&new(other.id, "alice", Some("+4930123456")))
            .await
            .unwrap();

        let names: Vec<_> = store
            .list_subscribers(t.id)
            .await
            .unwrap()
            .into_iter()
            .map(|s| s.username)
            .collect();
        assert_eq!(names, ["alice", "bob", "carol"]);
        assert_eq!(store.subscriber(bob.id).await.unwrap(), bob);

        let by = |d: &'static str, u: &'static str| {
            let store = store.clone();
            async move { store.find_subscriber(d, u).await.unwrap().map(|s| s.id) }
        };
        assert_eq!(by("example.com", "alice").await, Some(alice.id));
        assert_eq!(by("EXAMPLE.com", "+4930123456").await, Some(alice.id));
        assert_eq!(by("example.com", "1002").await, Some(bob.id));
        assert_eq!(by("other.example", "alice").await, Some(alice2.id));
        assert_eq!(by("other.example", "bob").await, None);
        assert_eq!(
            by("example.com", "Alice").await,
            None,
            "user part is case-sensitive"
        );
        assert_eq!(by("nowhere.example", "alice").await, None);

        // A username that equals another subscriber's number: the username wins.
        let shadow = store
            .add_subscriber(&new(t.id, "2000", Some("3000")))
            .await
            .unwrap();
        store
            .add_subscriber(&new(t.id, "dave", Some("2000")))
            .await
            .unwrap();
        assert_eq!(by("example.com", "2000").await, Some(shadow.id));
        assert_eq!(by("example.com", "3000").await, Some(shadow.id));

        store.set_subscriber_enabled(carol.id, false).await.unwrap();
        assert!(!store.subscriber(carol.id).await.unwrap().enabled);

        store.remove_subscriber(carol.id).await.unwrap();
        assert!(matches!(
            store.subscriber(carol.id).await,
            Err(Error::NotFound { what: "subscriber" })
        ));
        assert!(matches!(
            store.remove_subscriber(carol.id).await,
            Err(Error::NotFound { .. })
        ));
        assert!(matches!(
            store.set_password(carol.id, "x").await,
            Err(Error::NotFound { .. })
        ));
        assert!(matches!(
            store.set_subscriber_enabled(carol.id, true).await,
            Err(Error::NotFound { .. })
        ));
        b.finish(store).await;
    }
}

#[tokio::test]
async fn subscriber_conflicts_and_validation() {
    for b in common::backends().await {
        let store = b.open().await;
        let t = common::tenant(&store).await;
        store
            .add_subscriber(&new(t.id, "alice", Some("1001")))
            .await
            .unwrap();

        let e = store
            .add_subscriber(&new(t.id, "alice", None))
            .await
            .unwrap_err();
        assert!(
            matches!(&e, Error::Conflict { what } if what.contains("username")),
            "{e}"
        );
        let e = store
            .add_subscriber(&new(t.id, "bob", Some("1001")))
            .await
            .unwrap_err();
        assert!(
            matches!(&e, Error::Conflict { what } if what.contains("number")),
            "{e}"
        );

        for (user, number, password) in [
            ("", None, "pw"),
            ("a b", None, "pw"),
            ("a:b", None, "pw"),
            ("a@b", None, "pw"),
            ("a\u{0}b", None, "pw"),
            ("ok", Some("12ab"), "pw"),
            ("ok", Some(""), "pw"),
            ("ok", None, ""),
            ("ok", None, "pw\n"),
        ] {
            let r = store
                .add_subscriber(&NewSubscriber {
                    password,
                    ..new(t.id, user, number)
                })
                .await;
            assert!(
                matches!(r, Err(Error::Invalid(_))),
                "{user:?} {number:?} {password:?}"
            );
        }
        assert!(matches!(
            store
                .add_subscriber(&new(TenantId(999_999), "zed", None))
                .await,
            Err(Error::NotFound { what: "tenant" })
        ));
        assert_eq!(store.list_subscribers(t.id).await.unwrap().len(), 1);
        b.finish(store).await;
    }
}
