//! Moving a deployment from SQLite to PostgreSQL (`neurocards admin migrate-to`): every row
//! that matters is copied, in one transaction on the target, into a PostgreSQL database whose
//! schema is already up to date; its id sequences continue after the copied ids.
//!
//! The copy is driven by the target's schema: each table's columns and types are read from
//! PostgreSQL's catalogue, so a column added by a later migration is copied without a change
//! here, and a table added without a decision here is refused by [`COPIED_TABLES`]'s test.

use futures::TryStreamExt;

use super::{Engine, ResultExt, Store, StoreError};

/// Copied, parents before children.
pub const COPIED_TABLES: &[&str] = &[
    "users",
    "payments",
    "orders",
    "jobs",
    "ledger",
    "dialogs",
    "kie_accounts",
    "kie_keys",
    "model_states",
    "telegram_inbox",
    "promo_codes",
    "promo_redemptions",
    "broadcasts",
    "broadcast_recipients",
];

/// Not copied: what the running processes rebuild (worker registrations, the KIE create
/// slots and the Telegram sends of the last seconds, the alert gate, recent wrong promo codes),
/// KIE callbacks noted for the workers (wake-ups only: polling finds the same results) and
/// sqlx's own bookkeeping.
pub const SKIPPED_TABLES: &[&str] = &[
    "workers",
    "kie_creates",
    "kie_callbacks",
    "alert_gate",
    "promo_misses",
    "telegram_budget",
    "telegram_sends",
    "_sqlx_migrations",
];

/// What was copied, per table, and the money figures read back from the target.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TransferReport {
    pub rows: Vec<(&'static str, u64)>,
    pub users: i64,
    pub credits: i64,
    pub ledger_sum: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ColumnKind {
    Integer,
    Text,
}

enum Cell {
    Integer(Option<i64>),
    Text(Option<String>),
}

impl Store {
    /// Copies this store's data into `target`, which must be PostgreSQL and hold no users
    /// or orders yet. The processes using this store must be stopped first.
    pub async fn copy_into(&self, target: &Store) -> Result<TransferReport, StoreError> {
        const CONTEXT: &str = "copying the database";
        if target.engine != Engine::Postgres {
            return Err(StoreError::Corrupt(
                "the target of a copy must be a PostgreSQL database".to_owned(),
            ));
        }
        let occupied: i64 = sqlx::query_scalar(
            "SELECT (SELECT COUNT(*) FROM users) + (SELECT COUNT(*) FROM orders)",
        )
        .fetch_one(&target.pool)
        .await
        .context(CONTEXT)?;
        if occupied > 0 {
            return Err(StoreError::Corrupt(
                "the target database already holds users or orders: copy only into an empty one"
                    .to_owned(),
            ));
        }
        let mut tx = target.pool.begin().await.context(CONTEXT)?;
        let mut report = TransferReport::default();
        for table in COPIED_TABLES {
            let columns = target_columns(&mut tx, table).await?;
            let names: Vec<&str> = columns.iter().map(|(name, _)| name.as_str()).collect();
            let select = format!("SELECT {} FROM {table}", names.join(", "));
            let placeholders: Vec<String> = (1..=names.len()).map(|n| format!("${n}")).collect();
            let insert = format!(
                "INSERT INTO {table} ({}) VALUES ({})",
                names.join(", "),
                placeholders.join(", ")
            );
            // Table names come from `COPIED_TABLES`, column names from the catalogue: nothing from input.
            let mut rows = sqlx::query(sqlx::AssertSqlSafe(select.as_str())).fetch(&self.pool);
            let mut copied = 0u64;
            while let Some(row) = rows.try_next().await.context(CONTEXT)? {
                let cells = columns
                    .iter()
                    .map(|(name, kind)| read_cell(&row, name, *kind))
                    .collect::<Result<Vec<Cell>, StoreError>>()?;
                let mut query = sqlx::query(sqlx::AssertSqlSafe(insert.as_str()));
                for cell in cells {
                    query = match cell {
                        Cell::Integer(value) => query.bind(value),
                        Cell::Text(value) => query.bind(value),
                    };
                }
                query.execute(&mut *tx).await.context(CONTEXT)?;
                copied += 1;
            }
            report.rows.push((table, copied));
            // The next id after the copied ones; a table without a serial id has no sequence.
            if names.contains(&"id") {
                let sequence: Option<String> =
                    sqlx::query_scalar("SELECT pg_get_serial_sequence($1, 'id')")
                        .bind(*table)
                        .fetch_one(&mut *tx)
                        .await
                        .context(CONTEXT)?;
                if sequence.is_some() {
                    let reset = format!(
                        "SELECT setval(pg_get_serial_sequence('{table}', 'id'),
                                       COALESCE(MAX(id), 1), MAX(id) IS NOT NULL) FROM {table}"
                    );
                    sqlx::query(sqlx::AssertSqlSafe(reset.as_str()))
                        .execute(&mut *tx)
                        .await
                        .context(CONTEXT)?;
                }
            }
        }
        tx.commit().await.context(CONTEXT)?;
        let (users, credits): (i64, i64) =
            sqlx::query_as("SELECT COUNT(*), CAST(COALESCE(SUM(credits), 0) AS BIGINT) FROM users")
                .fetch_one(&target.pool)
                .await
                .context(CONTEXT)?;
        report.users = users;
        report.credits = credits;
        report.ledger_sum =
            sqlx::query_scalar("SELECT CAST(COALESCE(SUM(delta), 0) AS BIGINT) FROM ledger")
                .fetch_one(&target.pool)
                .await
                .context(CONTEXT)?;
        Ok(report)
    }

    /// The tables of this (PostgreSQL) database, for the check that [`COPIED_TABLES`] and
    /// [`SKIPPED_TABLES`] name them all.
    pub async fn table_names(&self) -> Result<Vec<String>, StoreError> {
        sqlx::query_scalar(
            "SELECT table_name::TEXT FROM information_schema.tables
             WHERE table_schema = current_schema() ORDER BY table_name",
        )
        .fetch_all(&self.pool)
        .await
        .context("listing the tables")
    }
}

async fn target_columns(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    table: &str,
) -> Result<Vec<(String, ColumnKind)>, StoreError> {
    let rows: Vec<(String, String)> = sqlx::query_as(
        "SELECT column_name::TEXT, data_type::TEXT FROM information_schema.columns
         WHERE table_schema = current_schema() AND table_name = $1
         ORDER BY ordinal_position",
    )
    .bind(table)
    .fetch_all(&mut **tx)
    .await
    .context("reading the target's columns")?;
    rows.into_iter()
        .map(|(name, data_type)| {
            let kind = match data_type.as_str() {
                "bigint" | "integer" | "smallint" => ColumnKind::Integer,
                "text" | "character varying" => ColumnKind::Text,
                other => {
                    return Err(StoreError::Corrupt(format!(
                        "{table}.{name} has the type {other}, which the copy does not know"
                    )))
                }
            };
            Ok((name, kind))
        })
        .collect()
}

fn read_cell(row: &sqlx::any::AnyRow, name: &str, kind: ColumnKind) -> Result<Cell, StoreError> {
    use sqlx::Row;
    const CONTEXT: &str = "reading a row to copy";
    Ok(match kind {
        ColumnKind::Integer => Cell::Integer(row.try_get(name).context(CONTEXT)?),
        ColumnKind::Text => Cell::Text(row.try_get(name).context(CONTEXT)?),
    })
}
