//! `pulih manifests …`: validate manifests and print their JSON Schema.

use pulih_model::routes;
use std::path::PathBuf;

use anyhow::Result;
use clap::{Args, Subcommand};
use pulih_model::manifest::{self, ManifestSet};

use crate::exit;

#[derive(Args)]
pub struct ManifestsArgs {
    #[command(subcommand)]
    command: ManifestsCommand,
}

#[derive(Subcommand)]
enum ManifestsCommand {
    /// Check manifest files (or directories of *.yaml) and report every problem.
    Validate {
        /// Print the problems as one JSON array.
        #[arg(long)]
        json: bool,
        #[arg(required = true, value_name = "DIR|FILE")]
        paths: Vec<PathBuf>,
    },
    /// Print the JSON Schema of manifests (as committed in manifests/schema/).
    Schema,
    /// What was applied to the controller: revisions, who, when, the changes.
    History {
        #[arg(long, default_value_t = 20)]
        limit: u32,
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        conn: crate::ops::Conn,
    },
}

pub async fn run(args: ManifestsArgs) -> Result<u8> {
    match args.command {
        ManifestsCommand::Validate { json, paths } => {
            let result = ManifestSet::load(&paths);
            let diags = match &result {
                Ok(_) => Vec::new(),
                Err(d) => d.clone(),
            };
            if json {
                println!("{}", serde_json::to_string(&diags)?);
            } else {
                for d in &diags {
                    eprintln!("{d}");
                }
            }
            match result {
                Ok(set) => {
                    if !json {
                        println!("ok: {}", set.summary());
                    }
                    Ok(exit::OK)
                }
                Err(d) => {
                    if !json {
                        eprintln!("{} problem(s); nothing was applied", d.len());
                    }
                    Ok(exit::INVALID)
                }
            }
        }
        ManifestsCommand::History { limit, json, conn } => {
            let revs: Vec<pulih_model::api::Revision> = conn
                .connect()?
                .get(&format!(
                    "{}?limit={limit}",
                    routes::path(routes::MANIFEST_REVISIONS, &[])
                ))
                .await?;
            if json {
                println!("{}", serde_json::to_string(&revs)?);
            } else {
                for r in &revs {
                    println!("revision {} — {} by {}", r.id, r.applied_at, r.applied_by);
                    for c in &r.changes {
                        let fields = if c.fields.is_empty() {
                            String::new()
                        } else {
                            format!(" ({})", c.fields.join(", "))
                        };
                        println!("  {} {}/{}{fields}", c.change, c.kind, c.name);
                    }
                }
            }
            Ok(exit::OK)
        }
        ManifestsCommand::Schema => {
            println!(
                "{}",
                serde_json::to_string_pretty(&manifest::json_schema())?
            );
            Ok(exit::OK)
        }
    }
}
