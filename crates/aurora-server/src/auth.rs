//! Authentication: the keys in memory (re-read from the key file when it
//! changes), the [`Principal`] a request acts as, and the middleware that
//! finds it.

use crate::error::ApiError;
use crate::keys::{KeyFile, KeyInfo, Right, ALL_COLLECTIONS};
use crate::App;
use axum::extract::{Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use parking_lot::{Mutex, RwLock};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How often the key file's metadata is looked at (at most once per this
/// interval, by whichever request comes first).
const RELOAD_CHECK: Duration = Duration::from_millis(500);

/// What identifies a version of the key file.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Stamp {
    modified: Option<std::time::SystemTime>,
    len: u64,
    #[cfg(unix)]
    inode: u64,
}

fn stamp(path: &std::path::Path) -> Option<Stamp> {
    let meta = std::fs::metadata(path).ok()?;
    Some(Stamp {
        modified: meta.modified().ok(),
        len: meta.len(),
        #[cfg(unix)]
        inode: std::os::unix::fs::MetadataExt::ino(&meta),
    })
}

#[derive(Default)]
struct Loaded {
    by_hash: HashMap<String, Arc<KeyInfo>>,
    stamp: Option<Stamp>,
}

/// The keys the server knows, from a key file or none.
pub(crate) struct KeyRing {
    file: Option<KeyFile>,
    /// Whether requests without a key are served while no key exists (a
    /// loopback server): the reload then says when that starts or stops.
    allow_anonymous: bool,
    loaded: RwLock<Arc<Loaded>>,
    last_check: Mutex<Instant>,
}

impl KeyRing {
    /// Loads `file` (an unreadable or damaged file is an error here, at start).
    pub(crate) fn open(file: Option<KeyFile>, allow_anonymous: bool) -> std::io::Result<Self> {
        let ring = Self {
            file,
            allow_anonymous,
            loaded: RwLock::new(Arc::new(Loaded::default())),
            last_check: Mutex::new(Instant::now()),
        };
        if let Some(file) = &ring.file {
            let st = stamp(file.path());
            let keys = file.load()?;
            *ring.loaded.write() = Arc::new(Loaded::from_keys(keys, st));
        }
        Ok(ring)
    }

    /// The current keys, re-read first if the file changed (looked at no
    /// more often than every [`RELOAD_CHECK`]). A file that cannot be read
    /// now keeps the keys last read, and says so in the log.
    fn current(&self) -> Arc<Loaded> {
        if let Some(file) = &self.file {
            let due = self.last_check.try_lock().is_some_and(|mut last| {
                let due = last.elapsed() >= RELOAD_CHECK;
                if due {
                    *last = Instant::now();
                }
                due
            });
            if due {
                let st = stamp(file.path());
                if st != self.loaded.read().stamp {
                    match file.load() {
                        Ok(keys) => {
                            tracing::info!(keys = keys.len(), file = %file.path().display(), "API keys reloaded");
                            let before = self.loaded.read().by_hash.len();
                            self.say_what_changed(before, keys.len());
                            *self.loaded.write() = Arc::new(Loaded::from_keys(keys, st));
                        }
                        Err(e) => {
                            tracing::error!(error = %e, "the key file cannot be read; keeping the keys last read")
                        }
                    }
                }
            }
        }
        Arc::clone(&self.loaded.read())
    }

    /// Says in the log when a loopback server starts or stops serving
    /// requests without a key (its last key revoked, its first created).
    fn say_what_changed(&self, before: usize, after: usize) {
        match (before, after) {
            (1.., 0) if self.allow_anonymous => tracing::warn!(
                "the last API key was revoked: this loopback server now serves requests WITHOUT a key, \
                 with every right (create a key to require keys again)"
            ),
            (1.., 0) => tracing::warn!("the last API key was revoked: every request is refused until a key is created"),
            (0, 1..) if self.allow_anonymous => {
                tracing::info!("an API key was created: requests without a key are refused from now on")
            }
            _ => {}
        }
    }

    /// How many keys there are now.
    pub(crate) fn count(&self) -> usize {
        self.current().by_hash.len()
    }

    /// Whether `who` may still act: its key was not revoked (nor its
    /// rights changed) since it was found; an anonymous principal only
    /// while no key exists. Long-lived streams ask this as they run.
    pub(crate) fn still_valid(&self, who: &Principal) -> bool {
        match who {
            Principal::Anonymous => self.count() == 0,
            Principal::Key(k) => self.current().by_hash.get(&k.sha256).is_some_and(|now| now.rights == k.rights),
        }
    }

    fn find(&self, token: &str) -> Option<Arc<KeyInfo>> {
        let loaded = self.current();
        loaded.by_hash.get(&crate::keys::token_hash(token)).cloned()
    }
}

impl Loaded {
    fn from_keys(keys: Vec<KeyInfo>, stamp: Option<Stamp>) -> Self {
        Self { by_hash: keys.into_iter().map(|k| (k.sha256.clone(), Arc::new(k))).collect(), stamp }
    }
}

/// Who a request acts as.
#[derive(Debug, Clone)]
pub(crate) enum Principal {
    /// No key is configured and the server allows requests without one
    /// (loopback only): everything is allowed.
    Anonymous,
    /// A key.
    Key(Arc<KeyInfo>),
}

impl Principal {
    /// Refuses (403) unless this principal has `right` on `collection`.
    pub(crate) fn require(&self, collection: &str, right: Right) -> Result<(), ApiError> {
        match self {
            Principal::Anonymous => Ok(()),
            Principal::Key(k) if k.allows(collection, right) => Ok(()),
            Principal::Key(k) => Err(ApiError::new(
                "forbidden",
                format!("key {} has no {} right on `{collection}`", k.id, right.as_str()),
            )
            .with("collection", collection)
            .with("right", right.as_str())),
        }
    }

    /// Refuses (403) unless this principal has `right` on every collection.
    pub(crate) fn require_all(&self, right: Right) -> Result<(), ApiError> {
        self.require(ALL_COLLECTIONS, right)
    }

    /// Whether this principal may read `collection` (to filter lists).
    pub(crate) fn can_read(&self, collection: &str) -> bool {
        self.require(collection, Right::Read).is_ok()
    }
}

/// The bearer token of a request: the `Authorization: Bearer` header, or
/// an `access_token` query parameter (a browser's `EventSource` cannot set
/// headers).
fn token(req: &Request) -> Option<String> {
    if let Some(value) = req.headers().get(header::AUTHORIZATION) {
        let value = value.to_str().ok()?;
        let (scheme, token) = value.split_once(' ')?;
        return scheme.eq_ignore_ascii_case("bearer").then(|| token.trim().to_string());
    }
    let query = req.uri().query()?;
    form_urlencoded::parse(query.as_bytes()).find(|(k, _)| k == "access_token").map(|(_, v)| v.into_owned())
}

/// The middleware: finds the principal, or answers 401.
pub(crate) async fn authenticate(State(app): State<Arc<App>>, mut req: Request, next: Next) -> Response {
    let principal = match token(&req) {
        Some(t) => match app.keys.find(&t) {
            Some(key) => Principal::Key(key),
            None => return ApiError::new("unauthorized", "unknown or revoked API key").into_response(),
        },
        None if app.allow_anonymous && app.keys.count() == 0 => Principal::Anonymous,
        None => {
            return ApiError::new("unauthorized", "this server needs an API key: `Authorization: Bearer <token>`")
                .into_response()
        }
    };
    req.extensions_mut().insert(principal);
    next.run(req).await
}
