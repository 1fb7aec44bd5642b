//! tandem's system of record: tenants, subscribers, registrations, CDRs and
//! numbers, on SQLite or PostgreSQL behind one API.
//!
//! # Which backend when
//!
//! - **SQLite** (`sqlite:///var/lib/tandem/tandem.db?mode=rwc`, or
//!   [`Store::open_in_dir`]) is the default: a file next to the binary, no
//!   set-up, built from the SQLite sources bundled with `sqlx`. It runs in WAL
//!   mode (readers never wait for the writer) with `synchronous = FULL` and
//!   foreign keys on. Right for `tandem up` and any deployment where one
//!   machine runs the brain and the API.
//! - **PostgreSQL** (`postgres://user:pass@host/db`) once several machines
//!   need the same data (a standby brain, API copies on other hosts), or when
//!   the CDR volume outgrows one disk. Connections are plain TCP or a Unix
//!   socket; this build enables no TLS for PostgreSQL.
//!
//! [`Store`] holds one pool of either kind and every method works on both:
//! the query code is written once and compiled for each backend (see the
//! `with_pool!` macro). Queries are ordinary `sqlx::query` calls with bound
//! parameters; nothing needs a database at build time.
//!
//! # Schema
//!
//! One set of migrations in `migrations/`, embedded in the binary and run by
//! [`Store::open`]:
//!
//! | table | holds | notes |
//! | --- | --- | --- |
//! | `tenants` | id, name, SIP domain, created_at | name and domain unique; domain stored lower-case |
//! | `subscribers` | tenant, username, number, display name, enabled, HA1 (MD5, SHA-256) | username and number unique per tenant; never a password |
//! | `bindings` | RFC 3261 §10 registrations: contact, source transport/ip/port, flow token, expiry, Call-ID/CSeq, q, RFC 5626 instance/reg-id, user agent | unique per (subscriber, contact); cascade-deleted with the subscriber |
//! | `cdrs` | one row per call: tenant id and name as text, parties, times, billable duration, disposition, SIP code, hangup side | no foreign key: CDRs outlive tenants |
//! | `cdr_legs` | media stats per leg (`a` caller, `b` callee) | written with its CDR in one transaction |
//! | `numbers` | per-tenant numbers routed to a subscriber, a conference or a script | unique per tenant |
//! | `directory_version` | one counter, bumped in the transaction of every write to tenants, subscribers or numbers | what brains poll to drop their directory caches |
//!
//! Portability rules the SQL keeps: every integer is `BIGINT` (so it is an
//! `i64` on both), times are unix milliseconds in `BIGINT`, booleans are
//! `BOOLEAN`, and sums are cast back to `BIGINT`. The only dialect difference,
//! the auto-increment key, is rewritten for PostgreSQL when migrating.
//!
//! # Writing CDRs
//!
//! A running brain hands CDRs to a [`CdrWriter`], which commits them in
//! batches and spools them to a local file while the store refuses them
//! (see its module for the guarantees); [`Store::insert_cdr`] and
//! [`Store::insert_cdrs`] are the direct forms.
//!
//! # Removal policy
//!
//! A tenant is only removed once it has no subscribers and no numbers
//! ([`Error::Conflict`] otherwise); removing a subscriber removes its bindings.
//! CDRs are never removed by the store.
//!
//! # Tests
//!
//! Every integration test runs its body on a fresh SQLite file, and again on
//! a fresh PostgreSQL database when `TANDEM_TEST_PG_URL` names a server it
//! may create databases on. `crates/store/tests/pg.sh` starts a throwaway
//! PostgreSQL, sets that variable and runs `cargo test -p store`.

mod bindings;
mod cdr_writer;
mod cdrs;
mod error;
mod numbers;
mod store;
mod subscribers;
mod tenants;
mod time;
mod types;
mod validate;

pub use cdr_writer::{CdrWriter, CdrWriterStats, MAX_BATCH as CDR_BATCH};
pub use error::{Error, Result};
pub use store::{Store, now_ms};
pub use subscribers::digest_ha1;
pub use time::UtcTime;
pub use types::{
    Binding, BindingId, Cdr, CdrFilter, CdrId, CdrSummary, Disposition, HangupSide, LegStats,
    NewBinding, NewCdr, NewSubscriber, Number, NumberId, NumberKind, Subscriber, SubscriberId,
    Tenant, TenantId,
};
