//! The guides under `docs/` of the repository, one page each, so they can
//! be read with the API docs (and on docs.rs); their examples are compiled
//! and run as doc tests, so they stay true.

#[doc = include_str!("../../../docs/storage.md")]
pub struct StorageGuide;

#[cfg(feature = "index")]
#[doc = include_str!("../../../docs/indexes.md")]
pub struct IndexGuide;

#[doc = include_str!("../../../docs/transactions.md")]
pub struct TransactionsGuide;

#[doc = include_str!("../../../docs/querying.md")]
pub struct QueryingGuide;

#[doc = include_str!("../../../docs/pubsub.md")]
pub struct PubSubGuide;

#[cfg(feature = "workers")]
#[doc = include_str!("../../../docs/workers.md")]
pub struct WorkersGuide;

#[doc = include_str!("../../../docs/crud.md")]
pub struct CrudGuide;

#[doc = include_str!("../../../docs/live-queries.md")]
pub struct LiveQueriesGuide;

#[doc = include_str!("../../../docs/computed-fields.md")]
pub struct ComputedFieldsGuide;

#[doc = include_str!("../../../docs/configuration.md")]
pub struct ConfigurationGuide;

#[doc = include_str!("../../../docs/performance.md")]
pub struct PerformanceGuide;

#[doc = include_str!("../../../docs/durability.md")]
pub struct DurabilityGuide;

#[doc = include_str!("../../../docs/json.md")]
pub struct JsonGuide;

#[cfg(feature = "workers")]
#[doc = include_str!("../../../docs/operations.md")]
pub struct OperationsGuide;

#[cfg(feature = "search")]
#[doc = include_str!("../../../docs/search.md")]
pub struct SearchGuide;

#[doc = include_str!("../../../docs/migrations.md")]
pub struct MigrationsGuide;
