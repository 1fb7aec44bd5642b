use sqlx::error::ErrorKind;

/// Everything a store call can fail with.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The row asked for does not exist.
    #[error("{what} not found")]
    NotFound { what: &'static str },
    /// A unique value is taken, or a row is still referenced by others.
    #[error("conflict: {what}")]
    Conflict { what: String },
    /// The input was refused before (or by a CHECK constraint in) the database.
    #[error("invalid input: {0}")]
    Invalid(&'static str),
    /// A REGISTER whose Call-ID matches the stored binding but whose CSeq is not
    /// higher: RFC 3261 §10.3 step 7 says the update must be aborted.
    #[error("binding update out of order (same Call-ID, CSeq not higher)")]
    OutOfOrder,
    #[error("database error: {0}")]
    Database(#[source] sqlx::Error),
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("cannot create the data directory: {0}")]
    Io(#[from] std::io::Error),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub(crate) fn conflict(what: impl Into<String>) -> Self {
        Error::Conflict { what: what.into() }
    }
}

/// Unique constraints by their PostgreSQL name and the column list SQLite puts
/// in its message, with the words an operator should read.
const UNIQUES: &[(&str, &str, &str)] = &[
    (
        "tenants_name_key",
        "tenants.name",
        "a tenant with this name exists",
    ),
    (
        "tenants_domain_key",
        "tenants.domain",
        "a tenant with this SIP domain exists",
    ),
    (
        "subscribers_username_key",
        "subscribers.tenant_id, subscribers.username",
        "this username exists in the tenant",
    ),
    (
        "subscribers_number_key",
        "subscribers.tenant_id, subscribers.number",
        "a subscriber with this number exists in the tenant",
    ),
    (
        "numbers_number_key",
        "numbers.tenant_id, numbers.number",
        "this number exists in the tenant",
    ),
    (
        "bindings_contact_key",
        "bindings.subscriber_id, bindings.contact",
        "this contact is bound already",
    ),
];

impl From<sqlx::Error> for Error {
    fn from(e: sqlx::Error) -> Self {
        let Some(db) = e.as_database_error() else {
            return match e {
                sqlx::Error::RowNotFound => Error::NotFound { what: "row" },
                e => Error::Database(e),
            };
        };
        match db.kind() {
            ErrorKind::UniqueViolation => {
                let constraint = db.constraint().unwrap_or("");
                let message = db.message();
                let what = UNIQUES
                    .iter()
                    .find(|(pg, lite, _)| {
                        constraint == *pg || message.ends_with(&format!("failed: {lite}"))
                    })
                    .map_or("a unique value is taken", |(_, _, what)| what);
                Error::conflict(what)
            }
            ErrorKind::ForeignKeyViolation => {
                Error::conflict("the row refers to a missing row, or is still referred to")
            }
            ErrorKind::CheckViolation => Error::Invalid("a value is out of its allowed range"),
            ErrorKind::NotNullViolation => Error::Invalid("a required value is missing"),
            _ => Error::Database(e),
        }
    }
}

pub(crate) fn is_foreign_key_violation(e: &sqlx::Error) -> bool {
    e.as_database_error()
        .is_some_and(|db| db.kind() == ErrorKind::ForeignKeyViolation)
}
