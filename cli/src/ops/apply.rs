//! `pulih apply`: manifests to the controller, validated with what is applied.

use super::*;

/// Collects manifest files (a file, or *.yaml/*.yml under a directory).
pub fn manifest_files(paths: &[PathBuf]) -> Result<Vec<ManifestFile>> {
    fn walk(p: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
        if p.is_dir() {
            let mut entries: Vec<PathBuf> = std::fs::read_dir(p)
                .with_context(|| format!("cannot list {}", p.display()))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .collect();
            entries.sort();
            for e in entries {
                if e.is_dir() {
                    walk(&e, out)?;
                } else if matches!(e.extension().and_then(|x| x.to_str()), Some("yaml" | "yml")) {
                    out.push(e);
                }
            }
        } else {
            out.push(p.to_path_buf());
        }
        Ok(())
    }
    let mut files = Vec::new();
    for p in paths {
        walk(p, &mut files)?;
    }
    if files.is_empty() {
        bail!("no *.yaml manifest files found");
    }
    files
        .into_iter()
        .map(|f| {
            let content = std::fs::read_to_string(&f)
                .with_context(|| format!("cannot read {}", f.display()))?;
            Ok(ManifestFile {
                name: f.display().to_string(),
                content,
            })
        })
        .collect()
}

/// Prints the outcome of an apply; returns the exit code.
pub fn print_apply(result: Result<ApplyResponse>, json: bool) -> Result<u8> {
    match result {
        Ok(r) => {
            if json {
                println!("{}", serde_json::to_string(&r)?);
            } else {
                for c in &r.changes {
                    let fields = if c.fields.is_empty() {
                        String::new()
                    } else {
                        format!(" ({})", c.fields.join(", "))
                    };
                    println!("{} {}/{}{fields}", c.change, c.kind, c.name);
                }
                match r.revision {
                    Some(rev) => println!("applied as revision {rev}"),
                    None => println!("nothing changed"),
                }
            }
            Ok(exit::OK)
        }
        Err(e) => match e.downcast::<ApiFailure>() {
            Ok(f) if !f.diagnostics.is_empty() => {
                for d in &f.diagnostics {
                    eprintln!("{d}");
                }
                eprintln!("{} problem(s); nothing was applied", f.diagnostics.len());
                Ok(exit::INVALID)
            }
            Ok(f) => Err(f.into()),
            Err(e) => Err(e),
        },
    }
}

#[derive(Args)]
pub struct ApplyArgs {
    /// Manifest files or directories.
    #[arg(
        short = 'f',
        long = "filename",
        required = true,
        value_name = "DIR|FILE"
    )]
    files: Vec<PathBuf>,
    /// Validate and show what would change; change nothing.
    #[arg(long)]
    dry_run: bool,
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    conn: Conn,
}

fn whoami() -> Option<String> {
    let user = std::env::var("USER").ok()?;
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").ok()?;
    Some(format!("{user}@{}", host.trim()))
}

pub async fn apply(a: ApplyArgs) -> Result<u8> {
    let api = a.conn.connect()?;
    let req = ApplyRequest {
        files: manifest_files(&a.files)?,
        reported_by: whoami(),
        dry_run: a.dry_run,
    };
    print_apply(
        api.post(&routes::path(routes::MANIFESTS, &[]), &req).await,
        a.json,
    )
}
