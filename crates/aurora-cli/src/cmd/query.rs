//! `aurora query DIR COLLECTION 'FILTER-JSON'`: the matching documents as
//! a table or as JSON lines, with order, offset, limit and projection.

use crate::database;
use crate::output::{cell, json_error_message, write_json_line, Table};
use anyhow::{anyhow, bail};
use aurora::{Document, Filter, Order};
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

/// How results are printed.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// Columns `_id` and the fields, one row per document (built from
    /// all the results at once: page with --limit, or use json).
    Table,
    /// One plain-JSON document per line (what `aurora import` reads),
    /// streamed as the query reads them.
    Json,
}

/// Arguments of `aurora query`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The database directory.
    pub dir: PathBuf,
    /// The collection.
    pub collection: String,
    /// The filter in plain JSON (see docs/json.md), e.g.
    /// '{"age": {"$gte": 18}}'; `{}` (the default) matches everything.
    #[arg(default_value = "{}")]
    pub filter: String,
    /// Order by a field, `FIELD` or `FIELD:desc` (repeat for ties).
    #[arg(long = "order", value_name = "FIELD[:asc|:desc]")]
    pub order: Vec<String>,
    /// Skip this many matches.
    #[arg(long)]
    pub offset: Option<usize>,
    /// Print at most this many.
    #[arg(long)]
    pub limit: Option<usize>,
    /// Print only these fields (comma-separated; `_id` always comes along).
    #[arg(long, value_delimiter = ',', value_name = "FIELD,...")]
    pub select: Vec<String>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
    /// Print the query plan (which index, how many rows examined) instead of the results.
    #[arg(long)]
    pub explain: bool,
}

/// Reads the filter argument: JSON first (an error names the line and
/// column), then the plain-JSON filter form (an error names the JSON
/// pointer of the bad part).
pub fn parse_filter(text: &str) -> anyhow::Result<Filter> {
    let json: serde_json::Value = serde_json::from_str(text).map_err(|e| {
        if crate::output::nests_too_deep(&e) {
            return anyhow!("invalid filter: the filter {}", crate::output::too_deep_message());
        }
        anyhow!("invalid filter: not JSON (line {}, column {}): {}", e.line(), e.column(), json_error_message(&e))
    })?;
    Filter::from_json(&json).map_err(|e| match e {
        aurora::CoreError::InvalidJson { at, reason } => {
            anyhow!("invalid filter at {}: {reason}", if at.is_empty() { "the top level" } else { &at })
        }
        other => anyhow!("invalid filter: {other}"),
    })
}

/// Reads `FIELD` or `FIELD:asc` / `FIELD:desc`.
fn parse_order(spec: &str) -> anyhow::Result<(String, Order)> {
    let (field, order) = match spec.rsplit_once(':') {
        Some((f, "asc")) => (f, Order::Asc),
        Some((f, "desc")) => (f, Order::Desc),
        Some((_, other)) => bail!("--order {spec}: `{other}` is neither `asc` nor `desc`"),
        None => (spec, Order::Asc),
    };
    if field.is_empty() {
        bail!("--order {spec}: no field");
    }
    Ok((field.to_string(), order))
}

/// Runs `aurora query`.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    // Bad arguments are refused before the database is opened.
    let filter = parse_filter(&args.filter)?;
    let order = args.order.iter().map(|o| parse_order(o)).collect::<anyhow::Result<Vec<_>>>()?;
    database::runtime()?.block_on(async {
        let db = database::open(&args.dir, false).await?;
        let result = query(&db, &args, filter, order).await;
        db.close().await?;
        result
    })
}

async fn query(
    db: &aurora::Aurora,
    args: &Args,
    filter: Filter,
    order: Vec<(String, Order)>,
) -> anyhow::Result<ExitCode> {
    database::require_collection(db, &args.dir, &args.collection)?;
    let mut q = db.query(&args.collection).where_filter(filter);
    for (field, o) in &order {
        q = q.order_by(field, *o);
    }
    if let Some(n) = args.offset {
        q = q.offset(n);
    }
    if let Some(n) = args.limit {
        q = q.limit(n);
    }
    if !args.select.is_empty() {
        q = q.select(args.select.iter().cloned());
    }
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    if args.explain {
        writeln!(out, "{:#?}", q.explain().await?)?;
        out.flush()?;
        return Ok(ExitCode::SUCCESS);
    }
    match args.format {
        Format::Json => {
            // Streamed: an unordered query is read lazily from one snapshot.
            for doc in q.stream()? {
                write_json_line(&mut out, &doc?)?;
            }
        }
        Format::Table => {
            let docs = q.collect().await?;
            table(&docs, &args.select).write(&mut out)?;
            writeln!(out, "({} document{})", docs.len(), if docs.len() == 1 { "" } else { "s" })?;
        }
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

/// The columns: `_id`, then the selected fields in the order given, or
/// else every top-level field of the results, sorted.
fn table(docs: &[Document], select: &[String]) -> Table {
    let mut columns: Vec<String> = select.iter().filter(|f| f.as_str() != "_id").cloned().collect();
    if columns.is_empty() {
        let all: std::collections::BTreeSet<&String> = docs.iter().flat_map(|d| d.fields.keys()).collect();
        columns = all.into_iter().cloned().collect();
    }
    let mut t = Table::new(std::iter::once("_id".to_string()).chain(columns.iter().cloned()).collect());
    for d in docs {
        let json = d.to_json();
        let row = std::iter::once(cell(&json["_id"]))
            .chain(columns.iter().map(|c| d.get_path(c).map(|v| cell(&v.to_json())).unwrap_or_default()))
            .collect();
        t.row(row);
    }
    t
}
