//! The transactional outbox: [`EnqueueExt::enqueue`] adds a job inside a
//! database transaction, so the job exists if and only if the transaction
//! commits.

use crate::job::{Job, JobId};
use aurora_core::Timestamp;
use aurora_txn::Transaction;

/// Enqueueing inside a transaction.
pub trait EnqueueExt {
    /// Adds `job` to this transaction's writes: it becomes visible to the
    /// workers when (and only if) the transaction commits. A job with a
    /// unique key already held by a live job returns that job's id and adds
    /// nothing; if a concurrent transaction takes the key first, this
    /// transaction's commit fails with a unique violation on `_jobs.dedupe`
    /// (retry it). Delays and `run_at` are measured by the system clock.
    /// An invalid job fails with [`aurora_txn::TxnError::Aborted`].
    fn enqueue(&mut self, job: Job) -> aurora_txn::Result<JobId>;
}

impl EnqueueExt for Transaction {
    fn enqueue(&mut self, job: Job) -> aurora_txn::Result<JobId> {
        crate::queue::ensure_collection(self.database())?;
        Ok(crate::queue::enqueue_in(self, job, Timestamp::now())?)
    }
}
