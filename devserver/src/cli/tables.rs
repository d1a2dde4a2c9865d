//! `woocom-dev tables`: the stack's DynamoDB tables with their item counts.
//! Reads the project's database directly, so it works with or without a
//! running `woocom-dev up`.

use std::path::Path;
use std::process::ExitCode;

use woocom_dev::dynamodb::DataLocation;
use woocom_dev::manifest::Manifest;

#[derive(clap::Args)]
pub struct TablesArgs {}

/// Opens the project's database read for a CLI command, or says why not.
pub fn open_project_database(
    manifest: &Manifest,
) -> Result<Option<dynoxide::Database>, Box<dyn std::error::Error>> {
    let location = DataLocation::project(manifest);
    let Some(file) = location.database_file() else {
        return Ok(None);
    };
    if !file.exists() {
        return Ok(None);
    }
    let db = dynoxide::Database::new(&file.to_string_lossy())
        .map_err(|e| format!("cannot open {}: {e}", file.display()))?;
    Ok(Some(db))
}

pub async fn run(
    manifest_path: &Path,
    _args: TablesArgs,
) -> Result<ExitCode, Box<dyn std::error::Error>> {
    let manifest = Manifest::load(manifest_path)?;
    let stats = match open_project_database(&manifest)? {
        Some(db) => db
            .table_stats()
            .map_err(|e| format!("cannot read tables: {e}"))?,
        None => Vec::new(),
    };
    let mut rows: Vec<(String, String, String, &str)> = stats
        .iter()
        .map(|s| {
            (
                s.table_name.clone(),
                s.item_count.to_string(),
                human_bytes(s.size_bytes),
                if manifest.tables.contains_key(&s.table_name) {
                    "dev.toml"
                } else {
                    "created at run time"
                },
            )
        })
        .collect();
    for name in manifest.tables.keys() {
        if !stats.iter().any(|s| &s.table_name == name) {
            rows.push((
                name.clone(),
                "-".into(),
                "-".into(),
                "dev.toml (created on next `up`)",
            ));
        }
    }
    if rows.is_empty() {
        println!(
            "no tables: declare them as [tables.<name>] in {}",
            manifest_path.display()
        );
        return Ok(ExitCode::SUCCESS);
    }
    rows.sort();
    let width = rows.iter().map(|r| r.0.len()).max().unwrap_or(5).max(5);
    println!("{:width$}  {:>8}  {:>9}  SOURCE", "TABLE", "ITEMS", "SIZE");
    for (name, items, size, source) in rows {
        println!("{name:width$}  {items:>8}  {size:>9}  {source}");
    }
    Ok(ExitCode::SUCCESS)
}

fn human_bytes(n: u64) -> String {
    match n {
        0..1024 => format!("{n} B"),
        1024..1_048_576 => format!("{:.1} KB", n as f64 / 1024.0),
        _ => format!("{:.1} MB", n as f64 / 1_048_576.0),
    }
}
