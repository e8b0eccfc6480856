//! The guides under `docs/`, compiled as doc tests so their examples stay true.

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
