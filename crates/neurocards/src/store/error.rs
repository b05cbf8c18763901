use crate::domain::job_status::UnknownJobStatus;
use crate::domain::pricing::PricingError;
use crate::domain::{JobId, JobStatus, OrderId, UserId};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("user {0} is not registered")]
    UnknownUser(UserId),
    #[error("order {0} does not exist")]
    UnknownOrder(OrderId),
    #[error("job {0} does not exist")]
    UnknownJob(JobId),
    #[error("payment {0} is not recorded")]
    UnknownPayment(String),
    #[error("user {user} has {balance} credits and {needed} are needed")]
    InsufficientCredits {
        user: UserId,
        balance: i64,
        needed: i64,
    },
    /// The job was taken back (or finished) since this lease was granted: the caller must
    /// stop working on it. Nothing was written.
    #[error("job {0} is no longer held under this attempt token")]
    StaleLease(JobId),
    #[error("job {job} cannot move from {from} to {to}")]
    IllegalTransition {
        job: JobId,
        from: JobStatus,
        to: JobStatus,
    },
    /// The worker's heartbeat came too late: it was presumed dead and its jobs were handed
    /// to others. It must drop what it holds and register again.
    #[error("worker {0} was presumed dead and its jobs were taken back")]
    WorkerPresumedDead(String),
    #[error(transparent)]
    Pricing(#[from] PricingError),
    #[error("the database holds an unexpected value: {0}")]
    Corrupt(String),
    #[error("cannot connect to the database at {target}")]
    Connect {
        target: String,
        #[source]
        source: sqlx::Error,
    },
    #[error("database migration failed")]
    Migrate(#[source] sqlx::migrate::MigrateError),
    #[error("database error while {context}")]
    Database {
        context: &'static str,
        #[source]
        source: sqlx::Error,
    },
}

impl From<UnknownJobStatus> for StoreError {
    fn from(err: UnknownJobStatus) -> Self {
        StoreError::Corrupt(err.to_string())
    }
}

impl StoreError {
    /// True when the database could not be reached or was busy: the same write may well
    /// succeed a little later (a restart, a failover, a long SQLite write lock).
    pub fn is_transient(&self) -> bool {
        let StoreError::Database { source, .. } = self else {
            return false;
        };
        match source {
            sqlx::Error::Io(_)
            | sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::Tls(_)
            | sqlx::Error::Protocol(_)
            | sqlx::Error::WorkerCrashed => true,
            sqlx::Error::Database(db) => {
                let code = db.code().unwrap_or_default();
                // SQLite: BUSY, LOCKED. PostgreSQL: connection exceptions, shutdowns, too many
                // connections, serialization failures and deadlocks.
                matches!(
                    code.as_ref(),
                    "5" | "6" | "517" | "262" | "53300" | "40001" | "40P01"
                ) || code.starts_with("08")
                    || code.starts_with("57P")
                    || db.message().contains("database is locked")
            }
            _ => false,
        }
    }

    /// True when the database refused a write because of the named unique index or
    /// constraint.
    pub fn violates(&self, constraint: &str) -> bool {
        match self {
            StoreError::Database { source, .. } => violates(source, constraint),
            _ => false,
        }
    }
}

/// SQLite names the columns, not the index, in its message; PostgreSQL names the index.
/// Both are checked so one call site serves both engines.
pub(crate) fn violates(err: &sqlx::Error, constraint: &str) -> bool {
    let Some(db) = err.as_database_error() else {
        return false;
    };
    if db.constraint() == Some(constraint) {
        return true;
    }
    let columns = match constraint {
        "orders_idempotency_key_unique" => "orders.idempotency_key",
        "ledger_one_refund_per_job" => "ledger.job_id",
        "ledger_one_debit_per_order" => "ledger.order_id",
        "ledger_one_credit_per_payment" => "ledger.payment_id",
        other => other,
    };
    db.message().contains(constraint) || db.message().contains(columns)
}

pub(crate) trait ResultExt<T> {
    /// Wraps a driver error with what the store was doing.
    fn context(self, context: &'static str) -> Result<T, StoreError>;
}

impl<T> ResultExt<T> for Result<T, sqlx::Error> {
    fn context(self, context: &'static str) -> Result<T, StoreError> {
        self.map_err(|source| StoreError::Database { context, source })
    }
}
