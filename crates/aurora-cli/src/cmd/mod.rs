//! The subcommands, one module each: clap `Args` and a `run` returning the
//! process exit code.

pub mod backup;
pub mod check;
pub mod export;
pub mod import;
pub mod keys;
pub mod query;
pub mod serve;
pub mod stats;
