use std::net::{IpAddr, SocketAddr};

use crate::error::{Error, Result, is_foreign_key_violation};
use crate::store::{Store, with_pool};
use crate::types::{Binding, BindingId, NewBinding, SubscriberId};
use crate::validate;

const COLUMNS: &str = "id, subscriber_id, contact, transport, source_ip, source_port, flow_token, \
     expires_at, call_id, cseq, q_milli, instance_id, reg_id, user_agent, updated_at";

/// A binding as its columns hold it; the source address is two columns.
#[derive(sqlx::FromRow)]
struct Row {
    id: BindingId,
    subscriber_id: SubscriberId,
    contact: String,
    transport: String,
    source_ip: String,
    source_port: i64,
    flow_token: Option<String>,
    expires_at: i64,
    call_id: String,
    cseq: i64,
    q_milli: Option<i64>,
    instance_id: Option<String>,
    reg_id: Option<i64>,
    user_agent: Option<String>,
    updated_at: i64,
}

impl TryFrom<Row> for Binding {
    type Error = Error;
    fn try_from(r: Row) -> Result<Binding> {
        let corrupt = || Error::Invalid("a stored binding has an out-of-range value");
        let ip: IpAddr = r.source_ip.parse().map_err(|_| corrupt())?;
        let port = u16::try_from(r.source_port).map_err(|_| corrupt())?;
        Ok(Binding {
            id: r.id,
            subscriber_id: r.subscriber_id,
            contact: r.contact,
            transport: r.transport,
            source: SocketAddr::new(ip, port),
            flow_token: r.flow_token,
            expires_at: r.expires_at,
            call_id: r.call_id,
            cseq: u32::try_from(r.cseq).map_err(|_| corrupt())?,
            q_milli: r
                .q_milli
                .map(u16::try_from)
                .transpose()
                .map_err(|_| corrupt())?,
            instance_id: r.instance_id,
            reg_id: r
                .reg_id
                .map(u32::try_from)
                .transpose()
                .map_err(|_| corrupt())?,
            user_agent: r.user_agent,
            updated_at: r.updated_at,
        })
    }
}

impl Store {
    /// Adds the binding of `contact` for the subscriber, or refreshes it.
    ///
    /// Applies RFC 3261 §10.3 step 7 atomically: an existing, unexpired
    /// binding with the same Call-ID is only updated by a higher CSeq; else
    /// the result is [`Error::OutOfOrder`] and nothing changes. (A request
    /// with expires 0 goes to [`Store::remove_binding`] instead.)
    pub async fn upsert_binding(&self, b: &NewBinding<'_>) -> Result<Binding> {
        validate::text(
            b.contact,
            2048,
            "contact must be 1-2048 bytes without control characters",
        )?;
        let transport = b.transport.to_ascii_lowercase();
        if !matches!(
            transport.as_str(),
            "udp" | "tcp" | "tls" | "sctp" | "ws" | "wss"
        ) {
            return Err(Error::Invalid(
                "transport must be udp, tcp, tls, sctp, ws or wss",
            ));
        }
        validate::optional_text(
            b.flow_token,
            256,
            "flow token must be 1-256 bytes without control characters",
        )?;
        validate::text(
            b.call_id,
            256,
            "Call-ID must be 1-256 bytes without control characters",
        )?;
        validate::optional_text(
            b.instance_id,
            256,
            "instance-id must be 1-256 bytes without control characters",
        )?;
        validate::optional_text(
            b.user_agent,
            256,
            "user agent must be 1-256 bytes without control characters",
        )?;
        if b.q_milli.is_some_and(|q| q > 1000) {
            return Err(Error::Invalid("q must be between 0 and 1000 thousandths"));
        }
        let sql = format!(
            "INSERT INTO bindings (subscriber_id, contact, transport, source_ip, source_port, \
             flow_token, expires_at, call_id, cseq, q_milli, instance_id, reg_id, user_agent, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14) \
             ON CONFLICT (subscriber_id, contact) DO UPDATE SET \
             transport = excluded.transport, source_ip = excluded.source_ip, \
             source_port = excluded.source_port, flow_token = excluded.flow_token, \
             expires_at = excluded.expires_at, call_id = excluded.call_id, cseq = excluded.cseq, \
             q_milli = excluded.q_milli, instance_id = excluded.instance_id, \
             reg_id = excluded.reg_id, user_agent = excluded.user_agent, \
             updated_at = excluded.updated_at \
             WHERE bindings.call_id <> excluded.call_id OR bindings.cseq < excluded.cseq \
             OR bindings.expires_at <= excluded.updated_at \
             RETURNING {COLUMNS}"
        );
        let result: Result<Option<Row>, sqlx::Error> =
            with_pool!(self, |pool| sqlx::query_as(&sql)
                .bind(b.subscriber_id)
                .bind(b.contact)
                .bind(&transport)
                .bind(b.source.ip().to_string())
                .bind(i64::from(b.source.port()))
                .bind(b.flow_token)
                .bind(b.expires_at)
                .bind(b.call_id)
                .bind(i64::from(b.cseq))
                .bind(b.q_milli.map(i64::from))
                .bind(b.instance_id)
                .bind(b.reg_id.map(i64::from))
                .bind(b.user_agent)
                .bind(b.now)
                .fetch_optional(pool)
                .await);
        let row = match result {
            Ok(row) => row,
            Err(e) if is_foreign_key_violation(&e) => {
                return Err(Error::NotFound { what: "subscriber" });
            }
            Err(e) => return Err(e.into()),
        };
        // No row back: the conflict's WHERE refused the update.
        row.ok_or(Error::OutOfOrder)?.try_into()
    }

    /// Removes one binding; false if there was none.
    pub async fn remove_binding(&self, subscriber: SubscriberId, contact: &str) -> Result<bool> {
        let n = with_pool!(self, |pool| sqlx::query(
            "DELETE FROM bindings WHERE subscriber_id = $1 AND contact = $2"
        )
        .bind(subscriber)
        .bind(contact)
        .execute(pool)
        .await?
        .rows_affected());
        Ok(n > 0)
    }

    /// `Contact: *` with expires 0: removes every binding of the subscriber.
    pub async fn remove_all_bindings(&self, subscriber: SubscriberId) -> Result<u64> {
        Ok(with_pool!(self, |pool| sqlx::query(
            "DELETE FROM bindings WHERE subscriber_id = $1"
        )
        .bind(subscriber)
        .execute(pool)
        .await?
        .rows_affected()))
    }

    /// The subscriber's unexpired bindings, highest q first (absent q counts
    /// as 1.0), then the most recently refreshed.
    pub async fn bindings_for(&self, subscriber: SubscriberId, now: i64) -> Result<Vec<Binding>> {
        let sql = format!(
            "SELECT {COLUMNS} FROM bindings WHERE subscriber_id = $1 AND expires_at > $2 \
             ORDER BY COALESCE(q_milli, 1000) DESC, updated_at DESC, id DESC"
        );
        let rows: Vec<Row> = with_pool!(self, |pool| sqlx::query_as(&sql)
            .bind(subscriber)
            .bind(now)
            .fetch_all(pool)
            .await?);
        rows.into_iter().map(Binding::try_from).collect()
    }

    /// Deletes expired bindings; returns how many.
    pub async fn expire_bindings(&self, now: i64) -> Result<u64> {
        Ok(with_pool!(self, |pool| sqlx::query(
            "DELETE FROM bindings WHERE expires_at <= $1"
        )
        .bind(now)
        .execute(pool)
        .await?
        .rows_affected()))
    }

    /// How many bindings are unexpired at `now`, over all tenants.
    pub async fn count_bindings(&self, now: i64) -> Result<u64> {
        let n: i64 = with_pool!(self, |pool| sqlx::query_scalar(
            "SELECT COUNT(*) FROM bindings WHERE expires_at > $1"
        )
        .bind(now)
        .fetch_one(pool)
        .await?);
        Ok(u64::try_from(n).unwrap_or(0))
    }
}
