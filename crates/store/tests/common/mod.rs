//! Runs each test body on every backend available: a fresh SQLite file
//! always, and a fresh PostgreSQL database when `TANDEM_TEST_PG_URL` names a
//! server we may create databases on (see `pg.sh`).
#![allow(dead_code)]

use std::sync::atomic::{AtomicU32, Ordering};

use sqlx::Connection;
use store::{Store, Tenant};

pub struct Backend {
    pub name: &'static str,
    pub url: String,
    _dir: Option<tempfile::TempDir>,
    pg: Option<(String, String)>,
}

static NEXT_DB: AtomicU32 = AtomicU32::new(0);

/// The backends to run a test on, each with an empty store behind `url`.
pub async fn backends() -> Vec<Backend> {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!(
        "sqlite://{}?mode=rwc",
        dir.path().join("tandem.db").display()
    );
    let mut all = vec![Backend {
        name: "sqlite",
        url,
        _dir: Some(dir),
        pg: None,
    }];
    if let Ok(admin) = std::env::var("TANDEM_TEST_PG_URL") {
        if !admin.is_empty() {
            // One database per test body: the tests run in parallel.
            let db = format!(
                "tandem_test_{}_{}",
                std::process::id(),
                NEXT_DB.fetch_add(1, Ordering::Relaxed)
            );
            let mut conn = sqlx::PgConnection::connect(&admin)
                .await
                .expect("connect to TANDEM_TEST_PG_URL");
            sqlx::query(&format!("CREATE DATABASE {db}"))
                .execute(&mut conn)
                .await
                .expect("create test database");
            conn.close().await.ok();
            all.push(Backend {
                name: "postgres",
                url: with_database(&admin, &db),
                _dir: None,
                pg: Some((admin, db)),
            });
        }
    }
    all
}

/// `admin` with its database name replaced by `db`.
fn with_database(admin: &str, db: &str) -> String {
    let (base, query) = match admin.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (admin, None),
    };
    let scheme_end = base.find("://").map_or(0, |i| i + 3);
    let host_part = match base[scheme_end..].find('/') {
        Some(i) => &base[..scheme_end + i],
        None => base,
    };
    match query {
        Some(q) => format!("{host_part}/{db}?{q}"),
        None => format!("{host_part}/{db}"),
    }
}

impl Backend {
    pub async fn open(&self) -> Store {
        eprintln!("backend: {}", self.name);
        Store::open(&self.url)
            .await
            .unwrap_or_else(|e| panic!("open {}: {e}", self.name))
    }

    /// Closes the store and drops the PostgreSQL test database.
    pub async fn finish(self, store: Store) {
        store.close().await;
        if let Some((admin, db)) = &self.pg {
            let mut conn = sqlx::PgConnection::connect(admin).await.expect("connect");
            sqlx::query(&format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)"))
                .execute(&mut conn)
                .await
                .expect("drop test database");
            conn.close().await.ok();
        }
    }
}

pub async fn tenant(store: &Store) -> Tenant {
    store
        .add_tenant("Example", "example.com")
        .await
        .expect("add tenant")
}
