//! Repair: [`Aurora::purge_document`] removes a document that cannot be
//! decoded (a damaged file), which an ordinary delete refuses.

use crate::error::Result;
use crate::Aurora;
use aurora_core::DocId;

impl Aurora {
    /// Removes a document **without reading it**, with its index entries
    /// and unique claims, for a document whose stored body cannot be
    /// decoded: reading it is `StorageError::Corrupt`, and so is
    /// [`Aurora::delete_document`], which reads the old version for index
    /// maintenance and the change event. Returns whether it existed.
    ///
    /// No change event is raised and no change-feed entry written (nobody
    /// could ever read the document); a warning is logged. It walks every
    /// index of the collection (a repair tool, not a write path: use
    /// `delete_document` for ordinary deletes). Works on any document.
    ///
    /// # Errors
    /// `Error::UnknownCollection`; `Error::Index(IndexError::Contention)`
    /// if the document or the collection's definition changed meanwhile
    /// (try again); storage errors.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> aurora::Result<()> {
    /// use aurora::{doc, Aurora, FieldDefinition, FieldType};
    /// let db = Aurora::temporary().await?;
    /// db.new_collection("users", [("email", FieldDefinition::new(FieldType::String).unique())]).await?;
    /// let id = db.insert_into("users", doc! { "email": "a@example.com" }).await?;
    /// assert!(db.purge_document("users", &id).await?);
    /// // The unique claim went with it.
    /// db.insert_into("users", doc! { "email": "a@example.com" }).await?;
    /// # Ok(()) }
    /// ```
    pub async fn purge_document(&self, collection: &str, id: &DocId) -> Result<bool> {
        let (collection, id) = (collection.to_string(), id.clone());
        self.write_heavy(move |db| {
            let existed = db.collections().purge_document(&collection, &id)?;
            if existed {
                tracing::warn!(%collection, id = %id, "purged a document without reading it (no change event)");
            }
            Ok(existed)
        })
        .await
    }
}
