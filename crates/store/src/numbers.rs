use crate::error::{Error, Result};
use crate::store::{BUMP_DIRECTORY, Store, directory_write, now_ms, with_pool};
use crate::types::{Number, NumberId, NumberKind, TenantId};
use crate::validate;

const COLUMNS: &str = "id, tenant_id, number, kind, target, created_at";

#[derive(sqlx::FromRow)]
struct Row {
    id: NumberId,
    tenant_id: TenantId,
    number: String,
    kind: String,
    target: String,
    created_at: i64,
}

impl TryFrom<Row> for Number {
    type Error = Error;
    fn try_from(r: Row) -> Result<Number> {
        Ok(Number {
            id: r.id,
            tenant_id: r.tenant_id,
            number: r.number,
            kind: NumberKind::parse(&r.kind)
                .ok_or(Error::Invalid("a stored number has an unknown kind"))?,
            target: r.target,
            created_at: r.created_at,
        })
    }
}

impl Store {
    /// Routes `number` in the tenant to `target` (a username, a conference
    /// name or a script name, after `kind`).
    pub async fn add_number(
        &self,
        tenant: TenantId,
        number: &str,
        kind: NumberKind,
        target: &str,
    ) -> Result<Number> {
        validate::number(number)?;
        validate::text(
            target,
            256,
            "target must be 1-256 bytes without control characters",
        )?;
        let sql = format!(
            "INSERT INTO numbers (tenant_id, number, kind, target, created_at) \
             VALUES ($1, $2, $3, $4, $5) RETURNING {COLUMNS}"
        );
        let result: Result<Row, sqlx::Error> = with_pool!(self, |pool| async {
            let mut tx = pool.begin().await?;
            let row = sqlx::query_as(&sql)
                .bind(tenant)
                .bind(number)
                .bind(kind.as_str())
                .bind(target)
                .bind(now_ms())
                .fetch_one(&mut *tx)
                .await?;
            sqlx::query(BUMP_DIRECTORY).execute(&mut *tx).await?;
            tx.commit().await?;
            Ok(row)
        }
        .await);
        match result {
            Ok(row) => row.try_into(),
            Err(e) if crate::error::is_foreign_key_violation(&e) => {
                Err(Error::NotFound { what: "tenant" })
            }
            Err(e) => Err(e.into()),
        }
    }

    /// A tenant's numbers, in text order.
    pub async fn list_numbers(&self, tenant: TenantId) -> Result<Vec<Number>> {
        let sql = format!("SELECT {COLUMNS} FROM numbers WHERE tenant_id = $1 ORDER BY number");
        let rows: Vec<Row> = with_pool!(self, |pool| sqlx::query_as(&sql)
            .bind(tenant)
            .fetch_all(pool)
            .await?);
        rows.into_iter().map(Number::try_from).collect()
    }

    pub async fn find_number(&self, tenant: TenantId, number: &str) -> Result<Option<Number>> {
        let sql = format!("SELECT {COLUMNS} FROM numbers WHERE tenant_id = $1 AND number = $2");
        let row: Option<Row> = with_pool!(self, |pool| sqlx::query_as(&sql)
            .bind(tenant)
            .bind(number)
            .fetch_optional(pool)
            .await?);
        row.map(Number::try_from).transpose()
    }

    pub async fn remove_number(&self, id: NumberId) -> Result<()> {
        let n = directory_write!(
            self,
            sqlx::query("DELETE FROM numbers WHERE id = $1").bind(id)
        );
        if n == 0 {
            return Err(Error::NotFound { what: "number" });
        }
        Ok(())
    }
}
