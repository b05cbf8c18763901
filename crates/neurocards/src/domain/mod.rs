//! Pure domain logic: no I/O here, so every rule is tested by plain unit tests.

pub mod error_class;
pub mod ids;
pub mod job_status;
pub mod ledger;
pub mod pricing;

pub use error_class::ErrorClass;
pub use ids::{JobId, OrderId, UserId};
pub use job_status::JobStatus;
pub use ledger::LedgerKind;
