//! The error type of `aurora-workers`.

use aurora_txn::TxnError;

/// A specialised `Result` for the job queue.
pub type Result<T, E = WorkerError> = std::result::Result<T, E>;

/// Why a job-queue operation failed. A failed operation changed nothing,
/// except bulk ones (`purge`, start-up recovery), which commit in batches
/// of 256 jobs and keep the batches done before the error.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WorkerError {
    /// A job definition or setting is not acceptable.
    #[error("invalid job `{job_type}`: {reason}")]
    InvalidJob {
        /// The job type.
        job_type: String,
        /// What is wrong.
        reason: String,
    },
    /// A worker setting is out of range.
    #[error("invalid worker setting `{setting}`: {reason}")]
    InvalidConfig {
        /// The setting.
        setting: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// A stored job could not be read back (written by a newer version, or damaged).
    #[error("job {id}: stored record is unreadable: {reason}")]
    CorruptJob {
        /// The job id.
        id: String,
        /// What is wrong.
        reason: String,
    },
    /// `start` on workers that are already running, or after `shutdown`.
    #[error("the workers are {0}")]
    State(&'static str),
    /// The database underneath failed (or is closed).
    #[error(transparent)]
    Database(#[from] TxnError),
}

impl From<aurora_index::IndexError> for WorkerError {
    fn from(e: aurora_index::IndexError) -> Self {
        WorkerError::Database(e.into())
    }
}

impl From<aurora_storage::StorageError> for WorkerError {
    fn from(e: aurora_storage::StorageError) -> Self {
        WorkerError::Database(e.into())
    }
}

impl WorkerError {
    /// Whether the database underneath is closed (workers stop on this).
    pub fn is_closed(&self) -> bool {
        matches!(
            self,
            WorkerError::Database(TxnError::Storage(aurora_storage::StorageError::Closed))
                | WorkerError::Database(TxnError::Index(aurora_index::IndexError::Storage(
                    aurora_storage::StorageError::Closed
                )))
        )
    }
}
