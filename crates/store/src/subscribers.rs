use md5::Md5;
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};
use crate::store::{BUMP_DIRECTORY, Store, directory_write, now_ms, with_pool};
use crate::types::{NewSubscriber, Subscriber, SubscriberId, TenantId};
use crate::validate;

const COLUMNS: &str = "id, tenant_id, username, number, display_name, enabled, ha1_md5, ha1_sha256, created_at, updated_at";

/// `H(username:realm:password)` in lower-case hex, for MD5 and SHA-256
/// (RFC 2617 §3.2.2.2, RFC 7616 §3.4.2).
pub fn digest_ha1(username: &str, realm: &str, password: &str) -> (String, String) {
    let input = format!("{username}:{realm}:{password}");
    (
        hex(&Md5::digest(input.as_bytes())),
        hex(&Sha256::digest(input.as_bytes())),
    )
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(char::from(DIGITS[usize::from(b >> 4)]));
        s.push(char::from(DIGITS[usize::from(b & 0xf)]));
    }
    s
}

impl Store {
    /// Adds a subscriber, keeping only the HA1 digests of `password` (realm =
    /// the tenant's domain).
    pub async fn add_subscriber(&self, new: &NewSubscriber<'_>) -> Result<Subscriber> {
        validate::username(new.username)?;
        validate::password(new.password)?;
        if let Some(number) = new.number {
            validate::number(number)?;
        }
        validate::optional_text(
            new.display_name,
            128,
            "display name must be 1-128 bytes without control characters",
        )?;
        let tenant = self.tenant(new.tenant_id).await?;
        let (md5, sha256) = digest_ha1(new.username, &tenant.domain, new.password);
        let now = now_ms();
        let sql = format!(
            "INSERT INTO subscribers (tenant_id, username, number, display_name, enabled, \
             ha1_md5, ha1_sha256, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8) RETURNING {COLUMNS}"
        );
        let subscriber = with_pool!(self, |pool| {
            let mut tx = pool.begin().await?;
            let subscriber = sqlx::query_as(&sql)
                .bind(new.tenant_id)
                .bind(new.username)
                .bind(new.number)
                .bind(new.display_name)
                .bind(new.enabled)
                .bind(&md5)
                .bind(&sha256)
                .bind(now)
                .fetch_one(&mut *tx)
                .await?;
            sqlx::query(BUMP_DIRECTORY).execute(&mut *tx).await?;
            tx.commit().await?;
            subscriber
        });
        Ok(subscriber)
    }

    /// A tenant's subscribers, by username.
    pub async fn list_subscribers(&self, tenant: TenantId) -> Result<Vec<Subscriber>> {
        let sql =
            format!("SELECT {COLUMNS} FROM subscribers WHERE tenant_id = $1 ORDER BY username");
        Ok(with_pool!(self, |pool| sqlx::query_as(&sql)
            .bind(tenant)
            .fetch_all(pool)
            .await?))
    }

    pub async fn subscriber(&self, id: SubscriberId) -> Result<Subscriber> {
        let sql = format!("SELECT {COLUMNS} FROM subscribers WHERE id = $1");
        let found = with_pool!(self, |pool| sqlx::query_as(&sql)
            .bind(id)
            .fetch_optional(pool)
            .await?);
        found.ok_or(Error::NotFound { what: "subscriber" })
    }

    /// The subscriber `user@domain`, where `user` is a username or a number;
    /// a username match wins over a number match. Disabled subscribers are
    /// returned too: the caller decides what "disabled" means.
    pub async fn find_subscriber(&self, domain: &str, user: &str) -> Result<Option<Subscriber>> {
        let sql = format!(
            "SELECT {} FROM subscribers s JOIN tenants t ON t.id = s.tenant_id \
             WHERE t.domain = $1 AND (s.username = $2 OR s.number = $2) \
             ORDER BY CASE WHEN s.username = $2 THEN 0 ELSE 1 END LIMIT 1",
            prefixed("s.")
        );
        let domain = domain.to_ascii_lowercase();
        Ok(with_pool!(self, |pool| sqlx::query_as(&sql)
            .bind(&domain)
            .bind(user)
            .fetch_optional(pool)
            .await?))
    }

    /// Replaces both HA1 digests.
    pub async fn set_password(&self, id: SubscriberId, password: &str) -> Result<()> {
        validate::password(password)?;
        let (username, realm): (String, String) = with_pool!(self, |pool| {
            sqlx::query_as(
            "SELECT s.username, t.domain FROM subscribers s JOIN tenants t ON t.id = s.tenant_id \
             WHERE s.id = $1"
        )
        .bind(id)
        .fetch_optional(pool)
        .await?
        })
        .ok_or(Error::NotFound { what: "subscriber" })?;
        let (md5, sha256) = digest_ha1(&username, &realm, password);
        let updated = directory_write!(self, sqlx::query(
                "UPDATE subscribers SET ha1_md5 = $1, ha1_sha256 = $2, updated_at = $3 WHERE id = $4",
            )
            .bind(&md5)
            .bind(&sha256)
            .bind(now_ms())
            .bind(id));
        if updated == 0 {
            return Err(Error::NotFound { what: "subscriber" });
        }
        Ok(())
    }

    /// A disabled subscriber keeps its data but should be refused service.
    pub async fn set_subscriber_enabled(&self, id: SubscriberId, enabled: bool) -> Result<()> {
        let updated = directory_write!(
            self,
            sqlx::query("UPDATE subscribers SET enabled = $1, updated_at = $2 WHERE id = $3")
                .bind(enabled)
                .bind(now_ms())
                .bind(id)
        );
        if updated == 0 {
            return Err(Error::NotFound { what: "subscriber" });
        }
        Ok(())
    }

    /// Removes a subscriber and, with it, its registrations.
    pub async fn remove_subscriber(&self, id: SubscriberId) -> Result<()> {
        let removed = directory_write!(
            self,
            sqlx::query("DELETE FROM subscribers WHERE id = $1").bind(id)
        );
        if removed == 0 {
            return Err(Error::NotFound { what: "subscriber" });
        }
        Ok(())
    }
}

fn prefixed(prefix: &str) -> String {
    COLUMNS
        .split(", ")
        .map(|c| format!("{prefix}{c}"))
        .collect::<Vec<_>>()
        .join(", ")
}
