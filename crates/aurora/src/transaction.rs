//! [`Transaction`]: the async face of an `aurora_txn::Transaction`.

use crate::error::{Error, Result};
use aurora_txn::CommitInfo;
use std::ops::{Deref, DerefMut};

/// A transaction from [`Aurora::begin`](crate::Aurora::begin): use the
/// document operations of [`aurora_txn::Transaction`] (it derefs to one —
/// reads see a snapshot plus the transaction's own writes), then
/// `commit().await` or `rollback()`. Dropping it uncommitted rolls back.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> aurora::Result<()> {
/// use aurora::{doc, Aurora};
/// let db = Aurora::temporary().await?;
/// db.new_collection("notes", Vec::<(&str, aurora::FieldDefinition)>::new()).await?;
/// let mut tx = db.begin()?;
/// let a = tx.insert("notes", doc! { "text": "one" })?;
/// tx.insert("notes", doc! { "text": "two" })?;
/// assert!(tx.get("notes", &a)?.is_some(), "reads see own writes");
/// tx.commit().await?;
/// assert!(db.get_document("notes", &a).await?.is_some());
/// # Ok(()) }
/// ```
pub struct Transaction {
    inner: aurora_txn::Transaction,
    strict: bool,
}

impl Transaction {
    pub(crate) fn new(inner: aurora_txn::Transaction, strict: bool) -> Self {
        Self { inner, strict }
    }

    /// Commits; returns when the durability mode's promise holds. On a
    /// conflict ([`Error::Conflict`]) or violation nothing was written.
    pub async fn commit(self) -> Result<CommitInfo> {
        let Transaction { inner: tx, strict } = self;
        if strict {
            // The fsync is waited for off the runtime's threads (see
            // `db::on_callers_thread`).
            crate::db::blocking_here_or_pool(move || Ok(tx.commit()?)).await
        } else {
            tx.commit().map_err(Error::from)
        }
    }

    /// Discards the transaction's writes.
    pub fn rollback(self) {
        self.inner.rollback();
    }
}

impl Deref for Transaction {
    type Target = aurora_txn::Transaction;
    fn deref(&self) -> &Self::Target {
        &self.inner
    }
}

impl DerefMut for Transaction {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.inner
    }
}
