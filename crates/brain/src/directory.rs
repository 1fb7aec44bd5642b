//! The directory as calls see it: tenants by domain, subscribers by name or
//! number, and a tenant's numbers, cached in memory.
//!
//! A call needs four such lookups before it rings anything; asking the store
//! each time costs a database round trip per lookup and, on SQLite, a hop to
//! its worker thread. The cache keeps answers (including "no such user")
//! until the store's directory version moves: every write to tenants,
//! subscribers or numbers bumps it, from any process (the CLI, another
//! brain), and a poller here notices within [`POLL`]. So a removed
//! subscriber or a changed password takes effect within that time, and
//! while the store is unreachable calls keep being routed from what is known.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use store::{Number, Store, Subscriber, Tenant, TenantId};
use tokio::task::JoinHandle;

/// How often the store's directory version is read.
pub const POLL: Duration = Duration::from_millis(250);
/// Entries per map before it is emptied: bounds what a scanner probing
/// random user names can make us hold.
const MAX_ENTRIES: usize = 100_000;

#[derive(Default)]
struct Cache {
    /// Bumped on every clear; a lookup only stores its answer if no clear
    /// happened while it was reading the store, so an answer read before a
    /// change can never outlive the change.
    generation: u64,
    tenants: HashMap<String, Option<Tenant>>,
    subscribers: HashMap<(String, String), Option<Subscriber>>,
    numbers: HashMap<(TenantId, String), Option<Number>>,
}

impl Cache {
    fn clear(&mut self) {
        self.generation += 1;
        self.tenants.clear();
        self.subscribers.clear();
        self.numbers.clear();
    }
}

struct Inner {
    store: Store,
    cache: Mutex<Cache>,
    /// False for a directory nobody keeps fresh: every lookup asks the store.
    caching: bool,
}

/// Cached directory lookups. Clones share one cache.
#[derive(Clone)]
pub struct Directory {
    inner: Arc<Inner>,
}

fn put<K: std::hash::Hash + Eq, V>(map: &mut HashMap<K, V>, k: K, v: V) {
    if map.len() >= MAX_ENTRIES {
        map.clear();
    }
    map.insert(k, v);
}

impl Directory {
    /// A directory over `store` and the task that keeps it fresh (abort it
    /// at shutdown).
    pub fn start(store: Store) -> (Directory, JoinHandle<()>) {
        let dir = Directory {
            inner: Arc::new(Inner {
                store,
                cache: Mutex::new(Cache::default()),
                caching: true,
            }),
        };
        let poller = {
            let dir = dir.clone();
            tokio::spawn(async move { dir.poll().await })
        };
        (dir, poller)
    }

    /// A directory that caches nothing (no poller to keep a cache honest).
    pub fn uncached(store: Store) -> Directory {
        Directory {
            inner: Arc::new(Inner {
                store,
                cache: Mutex::new(Cache::default()),
                caching: false,
            }),
        }
    }

    async fn poll(&self) {
        let mut seen: Option<i64> = None;
        let mut tick = tokio::time::interval(POLL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            match self.inner.store.directory_version().await {
                Ok(v) if seen != Some(v) => {
                    if seen.is_some() {
                        tracing::debug!(version = v, "directory changed: cache dropped");
                    }
                    self.cache().clear();
                    seen = Some(v);
                }
                Ok(_) => {}
                // Keep serving what we know; the next good read decides.
                Err(e) => tracing::debug!(error = %e, "directory version unreadable"),
            }
        }
    }

    fn cache(&self) -> MutexGuard<'_, Cache> {
        self.inner.cache.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Drops every cached answer now (after a write through this process
    /// that must be seen at once).
    pub fn invalidate(&self) {
        self.cache().clear();
    }

    pub fn store(&self) -> &Store {
        &self.inner.store
    }

    /// The cached answer for `key` in the map `pick` selects, or the
    /// store's, remembered unless the cache was cleared meanwhile.
    async fn cached<K, V, F>(
        &self,
        pick: fn(&mut Cache) -> &mut HashMap<K, Option<V>>,
        key: K,
        read: F,
    ) -> store::Result<Option<V>>
    where
        K: std::hash::Hash + Eq,
        V: Clone,
        F: std::future::Future<Output = store::Result<Option<V>>>,
    {
        if !self.inner.caching {
            return read.await;
        }
        let generation = {
            let mut c = self.cache();
            if let Some(v) = pick(&mut c).get(&key) {
                return Ok(v.clone());
            }
            c.generation
        };
        let v = read.await?;
        let mut c = self.cache();
        if c.generation == generation {
            put(pick(&mut c), key, v.clone());
        }
        Ok(v)
    }

    pub async fn tenant_by_domain(&self, domain: &str) -> store::Result<Option<Tenant>> {
        let read = self.inner.store.tenant_by_domain(domain);
        self.cached(|c| &mut c.tenants, domain.to_owned(), read)
            .await
    }

    /// A subscriber of the tenant with SIP domain `domain`, by user name or
    /// number.
    pub async fn find_subscriber(
        &self,
        domain: &str,
        user: &str,
    ) -> store::Result<Option<Subscriber>> {
        let read = self.inner.store.find_subscriber(domain, user);
        self.cached(
            |c| &mut c.subscribers,
            (domain.to_owned(), user.to_owned()),
            read,
        )
        .await
    }

    pub async fn find_number(
        &self,
        tenant: TenantId,
        number: &str,
    ) -> store::Result<Option<Number>> {
        let read = self.inner.store.find_number(tenant, number);
        self.cached(|c| &mut c.numbers, (tenant, number.to_owned()), read)
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use store::NewSubscriber;

    async fn wait_for<F, Fut>(what: &str, mut check: F)
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = bool>,
    {
        let deadline = tokio::time::Instant::now() + POLL * 8;
        while !check().await {
            assert!(tokio::time::Instant::now() < deadline, "{what}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    #[tokio::test]
    async fn answers_are_cached_until_the_directory_changes() {
        let dir = tempfile::tempdir().expect("dir");
        let store = Store::open_in_dir(dir.path()).await.expect("store");
        let t = store
            .add_tenant("t", "t.example.com")
            .await
            .expect("tenant");
        let alice = store
            .add_subscriber(&NewSubscriber {
                tenant_id: t.id,
                username: "alice",
                password: "pw-alice-1",
                number: Some("1001"),
                display_name: None,
                enabled: true,
            })
            .await
            .expect("alice");
        let (d, poller) = Directory::start(store.clone());
        let found = |user: &'static str| {
            let d = d.clone();
            async move {
                d.find_subscriber("t.example.com", user)
                    .await
                    .expect("lookup")
            }
        };
        assert_eq!(found("alice").await.map(|s| s.id), Some(alice.id));
        assert!(found("carol").await.is_none());
        assert!(d.find_number(t.id, "3000").await.expect("n").is_none());

        // Another process (here: another handle) changes the directory:
        // the removed subscriber disappears, the new one appears, and so
        // does the number, all within a few polls.
        let other = Store::open_in_dir(dir.path()).await.expect("second handle");
        other.remove_subscriber(alice.id).await.expect("remove");
        other
            .add_subscriber(&NewSubscriber {
                tenant_id: t.id,
                username: "carol",
                password: "pw-carol-1",
                number: None,
                display_name: None,
                enabled: true,
            })
            .await
            .expect("carol");
        other
            .add_number(t.id, "3000", store::NumberKind::Conference, "room")
            .await
            .expect("number");
        wait_for("alice removed, carol and 3000 added", || async {
            found("alice").await.is_none()
                && found("carol").await.is_some()
                && d.find_number(t.id, "3000").await.expect("n").is_some()
        })
        .await;
        assert_eq!(
            d.tenant_by_domain("t.example.com")
                .await
                .expect("tenant")
                .map(|t| t.id),
            Some(t.id)
        );

        // What is cached is served without the store: with the pool closed,
        // known answers still come back.
        poller.abort();
        store.close().await;
        assert!(found("carol").await.is_some());
        assert!(
            d.find_subscriber("t.example.com", "dave").await.is_err(),
            "an unknown key does go to the (closed) store"
        );
    }

    #[tokio::test]
    async fn an_uncached_directory_always_asks_the_store() {
        let dir = tempfile::tempdir().expect("dir");
        let store = Store::open_in_dir(dir.path()).await.expect("store");
        let d = Directory::uncached(store.clone());
        assert!(
            d.tenant_by_domain("x.example.com")
                .await
                .expect("q")
                .is_none()
        );
        store
            .add_tenant("x", "x.example.com")
            .await
            .expect("tenant");
        assert!(
            d.tenant_by_domain("x.example.com")
                .await
                .expect("q")
                .is_some()
        );
    }
}
