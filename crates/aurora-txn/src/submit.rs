//! The end of every commit, shared by [`Transaction::commit`] and the
//! batched insert path ([`Database::insert_many`]): a planned batch of
//! document writes, index writes and conditions gets the collection
//! definitions it was planned with as conditions and its change-feed entry,
//! goes through the storage pipeline, and on success publishes its changes
//! in commit order.
//!
//! [`Transaction::commit`]: crate::Transaction::commit

use crate::database::Database;
use crate::error::{Result, TxnError};
use crate::sink::{Change, Committed};
use aurora_index::IndexPlan;
use aurora_storage::{CommitOutcome, DocumentWrites, Revision};
use std::collections::BTreeSet;
use std::sync::Arc;

/// What the storage pipeline did with a planned batch.
pub(crate) enum Submitted {
    /// Committed at this sequence.
    Committed(Revision),
    /// The condition on this key failed; nothing was written.
    Refused(Vec<u8>),
}

/// A unique value claimed twice by the plans of one batch is a violation
/// (each claim is conditioned on being absent, so the batch could never
/// commit). Returns the claimed keys.
pub(crate) fn distinct_claims<'p>(db: &Database, plans: &'p [IndexPlan]) -> Result<BTreeSet<&'p [u8]>> {
    let mut claimed: BTreeSet<&[u8]> = BTreeSet::new();
    for plan in plans {
        for key in plan.claim_keys() {
            if !claimed.insert(key) {
                let err = db.collections().violation(plan, key);
                return Err(err.map_or(TxnError::Finished, TxnError::from));
            }
        }
    }
    Ok(claimed)
}

/// Conditions `batch` on the definitions the `plans` were made with, adds
/// the feed entry of `changes` (when the feed is on) and commits; on
/// success updates the index entry counts and publishes `changes` in
/// commit order (from the commit hook).
pub(crate) fn submit(
    db: &Database,
    transaction_id: u64,
    mut batch: DocumentWrites,
    plans: &[IndexPlan],
    changes: Vec<Change>,
) -> Result<Submitted> {
    let collections = db.collections();
    collections.require_definitions(plans, batch.batch_mut());
    let feed_at = match db.inner.change_feed {
        true => Some(crate::feed::append(batch.batch_mut(), transaction_id, &changes)?),
        false => None,
    };
    let inner = Arc::clone(&db.inner);
    batch.on_commit(Box::new(move |sequence| {
        if let Some(at) = feed_at {
            inner.feed_index.lock().appended(sequence, at);
        }
        inner.publish(Committed { sequence, transaction_id, changes });
    }));
    match collections.documents().commit(batch)? {
        CommitOutcome::Committed(sequence) => {
            collections.committed(plans, sequence);
            Ok(Submitted::Committed(sequence))
        }
        CommitOutcome::ConditionFailed { key, .. } => Ok(Submitted::Refused(key)),
    }
}

/// What a failed condition on `key` — not a document's — means for a batch
/// planned with `plans`: a collection definition changed meanwhile (a
/// [`TxnError::Conflict`], so a retry plans again with the new one), or a
/// unique value is taken.
pub(crate) fn refusal(db: &Database, plans: &[IndexPlan], key: &[u8]) -> TxnError {
    let collections = db.collections();
    if let Some(collection) = collections.changed_definition(plans, key) {
        // An index was created or dropped meanwhile: planning again (a
        // retry) uses the new definition.
        return TxnError::Conflict { collection: collection.to_string(), id: "(collection definition changed)".into() };
    }
    let violation = plans.iter().find_map(|p| collections.violation(p, key));
    violation.map_or_else(
        || TxnError::Conflict { collection: String::new(), id: aurora_storage::printable_key(key) },
        TxnError::from,
    )
}
