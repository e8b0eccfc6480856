//! `aurora keys create|list|revoke`: the API keys of a server's database.
//!
//! Keys live in `DIR/api-keys.json` beside the database (hashed: a token
//! is shown once, at creation), so these commands work while `aurora
//! serve` runs on `DIR`; the server sees a change within a second.

use std::path::PathBuf;
use std::process::ExitCode;

/// Arguments of `aurora keys`.
#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::Subcommand, Debug)]
enum Command {
    /// Create a key and print its token (the only time it is shown).
    Create {
        /// The database directory.
        #[arg(long, value_name = "DIR", default_value = "./aurora-data")]
        data: PathBuf,
        /// A name for people ("billing service").
        #[arg(long, default_value = "")]
        name: String,
        /// Read a collection (`*`: every collection); repeatable.
        #[arg(long = "read", value_name = "COLLECTION")]
        read: Vec<String>,
        /// Read and write a collection's documents; repeatable.
        #[arg(long = "write", value_name = "COLLECTION")]
        write: Vec<String>,
        /// Also create and drop the collection and its indexes; repeatable.
        #[arg(long = "admin", value_name = "COLLECTION")]
        admin: Vec<String>,
    },
    /// List the keys: ids, names, rights (never tokens).
    List {
        /// The database directory.
        #[arg(long, value_name = "DIR", default_value = "./aurora-data")]
        data: PathBuf,
        /// One JSON object per line instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Revoke a key by its id; a running server refuses it within a second.
    Revoke {
        /// The database directory.
        #[arg(long, value_name = "DIR", default_value = "./aurora-data")]
        data: PathBuf,
        /// The key's id (from `aurora keys list`), or the whole token.
        id: String,
    },
}

/// Runs `aurora keys`.
#[cfg(feature = "server")]
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    use anyhow::Context as _;
    use aurora_server::keys::{KeyFile, Right};
    use std::collections::BTreeMap;

    match args.command {
        Command::Create { data, name, read, write, admin } => {
            let mut rights = BTreeMap::new();
            for (list, right) in [(read, Right::Read), (write, Right::Write), (admin, Right::Admin)] {
                for c in list {
                    let e = rights.entry(c).or_insert(right);
                    *e = (*e).max(right);
                }
            }
            if rights.is_empty() {
                anyhow::bail!("a key needs at least one right: --read, --write or --admin COLLECTION (`*` for all)");
            }
            for collection in rights.keys() {
                aurora_server::keys::check_rights_name(collection)
                    .map_err(|e| anyhow::anyhow!("no right can be given on {collection:?}: {e}"))?;
            }
            let file = KeyFile::in_dir(&data);
            let key = file.create(&name, rights).with_context(|| format!("writing {}", file.path().display()))?;
            eprintln!("created key {} — keep the token below: it is not stored and cannot be shown again", key.info.id);
            println!("{}", key.token);
            Ok(ExitCode::SUCCESS)
        }
        Command::List { data, json } => {
            let file = KeyFile::in_dir(&data);
            let keys = file.load().with_context(|| format!("reading {}", file.path().display()))?;
            for k in &keys {
                let rights: Vec<String> = k.rights.iter().map(|(c, r)| format!("{}:{c}", r.as_str())).collect();
                if json {
                    let line = serde_json::json!({
                        "id": k.id, "name": k.name, "created_at": k.created_at,
                        "rights": k.rights.iter().map(|(c, r)| (c.clone(), serde_json::json!(r.as_str()))).collect::<serde_json::Map<_, _>>(),
                    });
                    println!("{line}");
                } else {
                    println!("{}  {:<20}  {}  {}", k.id, k.name, k.created_at, rights.join(" "));
                }
            }
            if keys.is_empty() && !json {
                eprintln!("no keys in {}", file.path().display());
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Revoke { data, id } => {
            // A token holds its id: `aurora_<id>_<secret>`.
            let id = match id.strip_prefix("aurora_").and_then(|rest| rest.split_once('_')) {
                Some((key_id, _)) => key_id.to_string(),
                None => id,
            };
            let file = KeyFile::in_dir(&data);
            if file.revoke(&id).with_context(|| format!("writing {}", file.path().display()))? {
                eprintln!("revoked key {id}");
                Ok(ExitCode::SUCCESS)
            } else {
                eprintln!("no key {id} in {}", file.path().display());
                Ok(ExitCode::FAILURE)
            }
        }
    }
}

/// Runs `aurora keys` (this build has no server).
#[cfg(not(feature = "server"))]
pub fn run(_args: Args) -> anyhow::Result<ExitCode> {
    anyhow::bail!("this `aurora` was built without the `server` feature")
}
