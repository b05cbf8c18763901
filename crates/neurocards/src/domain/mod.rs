//! Pure domain logic: no I/O here, so every rule is tested by plain unit tests.

pub mod callback;
pub mod error_class;
pub mod generation;
pub mod ids;
pub mod image;
pub mod job_status;
pub mod lang;
pub mod ledger;
pub mod pricing;
pub mod referral;
pub mod retry;
pub mod send_budget;

pub use error_class::ErrorClass;
pub use ids::{ChatId, JobId, OrderId, UserId};
pub use job_status::{JobStatus, INTERRUPTED_SUBMISSION};
pub use lang::Lang;
pub use ledger::LedgerKind;
