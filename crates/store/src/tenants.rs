use crate::error::{Error, Result, is_foreign_key_violation};
use crate::store::{BUMP_DIRECTORY, Store, now_ms, with_pool};
use crate::types::{Tenant, TenantId};
use crate::validate;

const COLUMNS: &str = "id, name, domain, created_at";

impl Store {
    /// Adds a tenant. `domain` is its SIP domain (or the box's IP address on a
    /// one-tenant install), matched case-insensitively.
    pub async fn add_tenant(&self, name: &str, domain: &str) -> Result<Tenant> {
        validate::tenant_name(name)?;
        let domain = validate::domain(domain)?;
        let sql = format!(
            "INSERT INTO tenants (name, domain, created_at) VALUES ($1, $2, $3) RETURNING {COLUMNS}"
        );
        let tenant = with_pool!(self, |pool| {
            let mut tx = pool.begin().await?;
            let tenant = sqlx::query_as(&sql)
                .bind(name)
                .bind(&domain)
                .bind(now_ms())
                .fetch_one(&mut *tx)
                .await?;
            sqlx::query(BUMP_DIRECTORY).execute(&mut *tx).await?;
            tx.commit().await?;
            tenant
        });
        Ok(tenant)
    }

    /// All tenants, by id.
    pub async fn list_tenants(&self) -> Result<Vec<Tenant>> {
        let sql = format!("SELECT {COLUMNS} FROM tenants ORDER BY id");
        Ok(with_pool!(self, |pool| sqlx::query_as(&sql)
            .fetch_all(pool)
            .await?))
    }

    pub async fn tenant(&self, id: TenantId) -> Result<Tenant> {
        let sql = format!("SELECT {COLUMNS} FROM tenants WHERE id = $1");
        let tenant = with_pool!(self, |pool| sqlx::query_as(&sql)
            .bind(id)
            .fetch_optional(pool)
            .await?);
        tenant.ok_or(Error::NotFound { what: "tenant" })
    }

    pub async fn tenant_by_name(&self, name: &str) -> Result<Option<Tenant>> {
        let sql = format!("SELECT {COLUMNS} FROM tenants WHERE name = $1");
        Ok(with_pool!(self, |pool| sqlx::query_as(&sql)
            .bind(name)
            .fetch_optional(pool)
            .await?))
    }

    /// The tenant a SIP request is for, by the host of its Request-URI or
    /// From/To; any letter case matches.
    pub async fn tenant_by_domain(&self, domain: &str) -> Result<Option<Tenant>> {
        let sql = format!("SELECT {COLUMNS} FROM tenants WHERE domain = $1");
        let domain = domain.to_ascii_lowercase();
        Ok(with_pool!(self, |pool| sqlx::query_as(&sql)
            .bind(&domain)
            .fetch_optional(pool)
            .await?))
    }

    /// Removes a tenant that has no subscribers and no numbers left; otherwise
    /// `Conflict`, so an operator never loses accounts by accident. Its CDRs
    /// stay, carrying its id and name.
    pub async fn remove_tenant(&self, id: TenantId) -> Result<()> {
        // The foreign keys decide, in the same statement: no window between a
        // check and the delete.
        let done = with_pool!(self, |pool| async {
            let mut tx = pool.begin().await?;
            let n = sqlx::query("DELETE FROM tenants WHERE id = $1")
                .bind(id)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            // Nothing written, nothing to invalidate.
            if n > 0 {
                sqlx::query(BUMP_DIRECTORY).execute(&mut *tx).await?;
            }
            tx.commit().await?;
            Ok::<_, sqlx::Error>(n)
        }
        .await);
        match done {
            Ok(0) => Err(Error::NotFound { what: "tenant" }),
            Ok(_) => Ok(()),
            Err(e) if is_foreign_key_violation(&e) => Err(Error::conflict(
                "the tenant still has subscribers or numbers; remove them first",
            )),
            Err(e) => Err(e.into()),
        }
    }
}
