//! API keys: the key file that `aurora keys create|list|revoke` writes and
//! the server reads (and re-reads when it changes), and the rights a key
//! carries.
//!
//! A key is a random 256-bit secret in a bearer token
//! (`aurora_<id>_<secret>`). The file keeps only the token's SHA-256: the
//! secrets are uniformly random and 256 bits long, so nobody can guess one
//! or invert the hash, and a fast hash is the right tool (a slow password
//! hash such as Argon2 protects low-entropy *passwords*; here it would only
//! cost every request time). The token is shown once, when it is created.
//!
//! The file lives next to the database (`<data>/api-keys.json`, see
//! [`KeyFile::in_dir`]) but outside the store, which a running server
//! locks: `aurora keys` works while the server runs, and the server sees
//! a change within half a second. Writers hold an advisory lock
//! (`api-keys.json.lock`) and replace the file atomically (write, fsync,
//! rename), so a reader never sees half a file; on Unix the file is
//! readable by its owner only.

use base64::Engine as _;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::io::{self, Write as _};
use std::path::{Path, PathBuf};

/// The key file's name inside a data directory.
pub const KEY_FILE_NAME: &str = "api-keys.json";

/// What a key may do with a collection. Each right includes the ones
/// before it: `Admin` ⊃ `Write` ⊃ `Read`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Right {
    /// Read documents, query, stream changes and live queries, read stats.
    Read,
    /// Also insert, replace, update and delete documents; transactions.
    Write,
    /// Also create and drop the collection and its indexes.
    Admin,
}

impl Right {
    /// `"read"`, `"write"` or `"admin"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Right::Read => "read",
            Right::Write => "write",
            Right::Admin => "admin",
        }
    }
}

impl std::str::FromStr for Right {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "read" => Ok(Right::Read),
            "write" => Ok(Right::Write),
            "admin" => Ok(Right::Admin),
            other => Err(format!("unknown right {other:?} (read, write or admin)")),
        }
    }
}

/// The collection name that stands for every collection in a key's rights
/// (system collections such as `_jobs` included).
pub const ALL_COLLECTIONS: &str = "*";

/// Checks a collection name given rights in a key: [`ALL_COLLECTIONS`],
/// the job queue's `_jobs` (the rights of `/v1/jobs`), or a name a user
/// collection can have (the naming rules of collections; not starting
/// with `_`, which is reserved for system collections). A right on any
/// other name could never apply — most likely a typo.
///
/// ```
/// use aurora_server::keys::check_rights_name;
/// assert!(check_rights_name("orders").is_ok() && check_rights_name("*").is_ok() && check_rights_name("_jobs").is_ok());
/// assert!(check_rights_name("").is_err() && check_rights_name("_system").is_err() && check_rights_name("a\0b").is_err());
/// ```
pub fn check_rights_name(collection: &str) -> Result<(), String> {
    if collection == ALL_COLLECTIONS || collection == aurora::workers::JOBS {
        return Ok(());
    }
    if collection.starts_with('_') {
        return Err(format!(
            "collection {collection:?}: names starting with `_` are reserved for system collections \
             (the job queue's rights are on `_jobs`)"
        ));
    }
    aurora::storage::validate_collection_name(collection).map_err(|e| e.to_string())
}

/// One key as stored: everything but the secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyInfo {
    /// The key's public id (also inside the token), for listing and revoking.
    pub id: String,
    /// A name for people ("billing service").
    pub name: String,
    /// The hex SHA-256 of the whole token.
    pub sha256: String,
    /// Rights per collection name, or [`ALL_COLLECTIONS`] for every one.
    pub rights: BTreeMap<String, Right>,
    /// When it was created (RFC 3339, UTC).
    pub created_at: String,
}

impl KeyInfo {
    /// The right this key has on `collection`: the higher of its right on
    /// that name and on [`ALL_COLLECTIONS`].
    pub fn right_on(&self, collection: &str) -> Option<Right> {
        self.rights.get(collection).copied().max(self.rights.get(ALL_COLLECTIONS).copied())
    }

    /// Whether the key has at least `right` on `collection`.
    pub fn allows(&self, collection: &str, right: Right) -> bool {
        self.right_on(collection).is_some_and(|r| r >= right)
    }
}

/// A key just created: its stored form and the token, which exists only
/// here — show it to the user once.
#[derive(Debug, Clone)]
pub struct NewKey {
    /// The stored form.
    pub info: KeyInfo,
    /// The bearer token (`aurora_<id>_<secret>`).
    pub token: String,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct FileContents {
    format: u32,
    keys: Vec<KeyInfo>,
}

/// The hex SHA-256 of a token, as stored.
pub fn token_hash(token: &str) -> String {
    let digest = Sha256::digest(token.as_bytes());
    let mut out = String::with_capacity(64);
    for b in digest {
        out.push_str(&format!("{b:02x}"));
    }
    out
}

fn random_bytes<const N: usize>() -> io::Result<[u8; N]> {
    let mut buf = [0u8; N];
    getrandom::fill(&mut buf).map_err(|e| io::Error::other(format!("the system's random numbers: {e}")))?;
    Ok(buf)
}

fn invalid(path: &Path, why: impl std::fmt::Display) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, format!("key file {}: {why}", path.display()))
}

/// The key file: read by the server, written by `aurora keys`.
#[derive(Debug, Clone)]
pub struct KeyFile {
    path: PathBuf,
}

impl KeyFile {
    /// The key file at `path`.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self { path: path.into() }
    }

    /// The key file of the database in `data_dir` (`<data_dir>/api-keys.json`).
    pub fn in_dir(data_dir: impl AsRef<Path>) -> Self {
        Self::new(data_dir.as_ref().join(KEY_FILE_NAME))
    }

    /// Where the file is.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The keys (none if the file does not exist).
    pub fn load(&self) -> io::Result<Vec<KeyInfo>> {
        match std::fs::read(&self.path) {
            Ok(bytes) => Self::parse(&self.path, &bytes),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Vec::new()),
            Err(e) => Err(e),
        }
    }

    pub(crate) fn parse(path: &Path, bytes: &[u8]) -> io::Result<Vec<KeyInfo>> {
        let contents: FileContents = serde_json::from_slice(bytes).map_err(|e| invalid(path, e))?;
        if contents.format != 1 {
            return Err(invalid(path, format!("unknown format {}", contents.format)));
        }
        Ok(contents.keys)
    }

    /// Creates a key with `rights` (collection name or `*` → right) and
    /// returns it with its token.
    ///
    /// # Errors
    /// `InvalidInput` without rights, or with rights on a name no
    /// collection can have ([`check_rights_name`]); I/O errors.
    pub fn create(&self, name: &str, rights: BTreeMap<String, Right>) -> io::Result<NewKey> {
        if rights.is_empty() {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "a key needs at least one right"));
        }
        for collection in rights.keys() {
            check_rights_name(collection).map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        }
        let id: String = random_bytes::<6>()?.iter().map(|b| format!("{b:02x}")).collect();
        let secret = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(random_bytes::<32>()?);
        let token = format!("aurora_{id}_{secret}");
        let info = KeyInfo {
            id,
            name: name.to_string(),
            sha256: token_hash(&token),
            rights,
            created_at: aurora::Timestamp::now().to_string(),
        };
        let stored = info.clone();
        self.update(move |keys| {
            keys.push(stored);
            Ok(())
        })?;
        Ok(NewKey { info, token })
    }

    /// Revokes the key with this id; returns whether there was one.
    pub fn revoke(&self, id: &str) -> io::Result<bool> {
        let mut found = false;
        self.update(|keys| {
            let before = keys.len();
            keys.retain(|k| k.id != id);
            found = keys.len() != before;
            Ok(())
        })?;
        Ok(found)
    }

    /// Reads, changes and atomically rewrites the file under its lock.
    fn update(&self, change: impl FnOnce(&mut Vec<KeyInfo>) -> io::Result<()>) -> io::Result<()> {
        use fs2::FileExt as _;
        let dir = self.path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir)?;
        let lock_path = self.path.with_extension("json.lock");
        let lock = std::fs::OpenOptions::new().create(true).truncate(false).write(true).open(&lock_path)?;
        lock.lock_exclusive()?;
        let mut keys = self.load()?;
        change(&mut keys)?;
        let contents = FileContents { format: 1, keys };
        let mut bytes = serde_json::to_vec_pretty(&contents).map_err(io::Error::other)?;
        bytes.push(b'\n');
        let tmp = self.path.with_extension("json.tmp");
        {
            let mut options = std::fs::OpenOptions::new();
            options.create(true).truncate(true).write(true);
            #[cfg(unix)]
            std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
            let mut file = options.open(&tmp)?;
            file.write_all(&bytes)?;
            file.sync_all()?;
        }
        std::fs::rename(&tmp, &self.path)?;
        if let Ok(d) = std::fs::File::open(dir) {
            let _ = d.sync_all();
        }
        drop(lock);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn create_list_revoke() {
        let tmp = tempfile::tempdir().expect("tmp");
        let file = KeyFile::in_dir(tmp.path());
        assert!(file.load().expect("load").is_empty());
        let rights = BTreeMap::from([("orders".to_string(), Right::Write), ("*".to_string(), Right::Read)]);
        let a = file.create("app", rights).expect("create");
        assert!(a.token.starts_with(&format!("aurora_{}_", a.info.id)));
        assert_eq!(a.token.len(), "aurora_".len() + 12 + 1 + 43);
        let b = file.create("ops", BTreeMap::from([("*".to_string(), Right::Admin)])).expect("create");
        let keys = file.load().expect("load");
        assert_eq!(keys.len(), 2);
        assert_eq!(keys[0].sha256, token_hash(&a.token));
        assert!(!std::fs::read_to_string(file.path()).expect("read").contains(&a.token), "only the hash is stored");
        assert!(keys[0].allows("orders", Right::Write) && keys[0].allows("users", Right::Read));
        assert!(!keys[0].allows("users", Right::Write) && !keys[0].allows("orders", Right::Admin));
        assert!(file.revoke(&b.info.id).expect("revoke"));
        assert!(!file.revoke(&b.info.id).expect("revoke"));
        assert_eq!(file.load().expect("load").len(), 1);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(file.path()).expect("meta").permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    #[test]
    fn a_damaged_file_is_an_error_not_an_empty_key_set() {
        let tmp = tempfile::tempdir().expect("tmp");
        let file = KeyFile::in_dir(tmp.path());
        std::fs::write(file.path(), b"{not json").expect("write");
        assert_eq!(file.load().unwrap_err().kind(), io::ErrorKind::InvalidData);
    }
}
