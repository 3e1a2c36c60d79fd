//! `pulih manifests …`: validate manifests and print their JSON Schema.

use std::path::PathBuf;

use anyhow::Result;
use clap::{Args, Subcommand};
use pulih_core::manifest::{self, ManifestSet};

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
}

pub fn run(args: ManifestsArgs) -> Result<u8> {
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
        ManifestsCommand::Schema => {
            println!(
                "{}",
                serde_json::to_string_pretty(&manifest::json_schema())?
            );
            Ok(exit::OK)
        }
    }
}
