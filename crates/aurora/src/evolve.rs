//! Schema evolution on the [`Aurora`] handle: [`Aurora::evolve_collection`],
//! [`Aurora::alter_schema`], [`Aurora::schema`]. The mechanism (online,
//! crash-safe, checked against concurrent writers) is
//! `aurora_index::Collections::alter_schema`; the guide is
//! `docs/migrations.md`.

use crate::db::{refuse_reserved, Aurora};
use crate::error::Result;
use aurora_index::{Existing, Schema, SchemaChange};

impl Aurora {
    /// Creates the collection with `schema`, or — if it exists with another
    /// schema — changes its schema to `schema` under the policy `existing`
    /// for the documents already stored (see [`Existing`]). The same schema
    /// again changes nothing (`changed == false`), so a program can make
    /// this call at every start with the schema its code expects.
    ///
    /// Writers are never blocked: during the change every write is checked
    /// against the old and the new schema, new indexes are built online and
    /// ready when this returns, and a change that is refused — or cut short
    /// by a crash, rolled back at the next open — leaves the old schema
    /// exactly. Runs on tokio's blocking pool (it may read the whole
    /// collection).
    ///
    /// # Errors
    /// [`Error::SchemaChangeRefused`](crate::Error::SchemaChangeRefused)
    /// (under [`Existing::Validate`], naming the first stored document that
    /// does not fit, and its field); `Error::Index` with `DuplicateValues`
    /// (a field made unique whose stored values repeat, under every policy)
    /// or `InvalidSchema`; the errors of [`Aurora::new_collection`]. On
    /// every error the collection is left as it was.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> aurora::Result<()> {
    /// use aurora::{doc, Aurora, Error, Existing, FieldDefinition, FieldType, Schema};
    /// let db = Aurora::temporary().await?;
    /// let v1 = Schema::new().field("title", FieldDefinition::new(FieldType::String));
    /// assert!(db.evolve_collection("notes", v1.clone(), Existing::Validate).await?.created);
    /// db.insert_into("notes", doc! { "title": "a note" }).await?;
    ///
    /// // v2 requires a `pinned` flag: the stored note has none.
    /// let v2 = v1.field("pinned", FieldDefinition::new(FieldType::Bool).indexed());
    /// let refused = db.evolve_collection("notes", v2.clone(), Existing::Validate).await;
    /// assert!(matches!(refused, Err(Error::SchemaChangeRefused { ref field, .. }) if field == "pinned"));
    ///
    /// // Backfill, then the same change passes; a second start changes nothing.
    /// db.query("notes").update(aurora::Update::new().set_if_absent("pinned", false)).await?;
    /// let change = db.evolve_collection("notes", v2.clone(), Existing::Validate).await?;
    /// assert_eq!((change.checked, change.indexes_built.len()), (1, 1));
    /// assert!(!db.evolve_collection("notes", v2, Existing::Validate).await?.changed);
    /// # Ok(()) }
    /// ```
    pub async fn evolve_collection(&self, name: &str, schema: Schema, existing: Existing) -> Result<SchemaChange> {
        refuse_reserved(name)?;
        let name = name.to_string();
        self.write_heavy(move |db| Ok(db.collections().evolve_collection(&name, schema, existing)?)).await
    }

    /// Changes the schema of an existing collection, like
    /// [`Aurora::evolve_collection`] but without creating it.
    ///
    /// # Errors
    /// [`Error::UnknownCollection`](crate::Error::UnknownCollection); a
    /// system collection's name (starting with `_`) is refused like a new
    /// one's; those of [`Aurora::evolve_collection`].
    pub async fn alter_schema(&self, collection: &str, schema: Schema, existing: Existing) -> Result<SchemaChange> {
        refuse_reserved(collection)?;
        let collection = collection.to_string();
        self.write_heavy(move |db| Ok(db.collections().alter_schema(&collection, schema, existing)?)).await
    }

    /// The collection's current schema (compound indexes are not part of
    /// it: see [`Aurora::collection_stats`]).
    ///
    /// # Errors
    /// [`Error::UnknownCollection`](crate::Error::UnknownCollection),
    /// [`Error::Closed`](crate::Error::Closed).
    pub fn schema(&self, collection: &str) -> Result<Schema> {
        self.check_open()?;
        Ok(self.database().collections().definition_shared(collection)?.schema.clone())
    }
}
