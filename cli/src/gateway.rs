//! `pulih drc serve`, `pulih drc gateway-key` and `pulih drc credential`:
//! the append-only DRC gateway (pulih-gateway) and the credentials it
//! accepts.

use std::path::PathBuf;

use anyhow::{Result, bail};
use clap::Args;
use pulih_gateway::creds::{GatewayKey, Principal};

use crate::exit;

#[derive(Args)]
pub struct ServeArgs {
    /// The gateway's TOML configuration.
    #[arg(long, env = "PULIH_GATEWAY_CONFIG", value_name = "FILE")]
    config: PathBuf,
}

pub async fn serve(a: ServeArgs) -> Result<u8> {
    let stop = crate::serve::shutdown_on_signals();
    pulih_gateway::serve::run(&a.config, stop, |addr, tls| {
        // The address on stdout, for scripts that started it on port 0.
        let scheme = if tls { "https" } else { "http" };
        println!("gateway: {scheme}://{addr}");
    })
    .await?;
    Ok(exit::OK)
}

/// Writes a new gateway key (64 hex digits, mode 0600).
pub fn keygen(out: &std::path::Path) -> Result<u8> {
    crate::repo::write_secret(out, &format!("{}\n", GatewayKey::generate()))?;
    eprintln!(
        "gateway key written to {}; name it as key_file in the gateway's config, and keep it where only the gateway and whoever issues credentials can read it",
        out.display()
    );
    Ok(exit::OK)
}

#[derive(Args)]
pub struct CredentialArgs {
    /// The gateway key (`pulih drc gateway-key`).
    #[arg(long, value_name = "FILE")]
    key_file: PathBuf,
    /// For a PD server's agent: AGENCY/SERVER.
    #[arg(long, value_name = "AGENCY/SERVER", conflicts_with_all = ["reader", "executor"])]
    agent: Option<String>,
    /// For an agency's walidata (`pulih repo …`): AGENCY.
    #[arg(long, value_name = "AGENCY", conflicts_with = "executor")]
    reader: Option<String>,
    /// For a DRC target's executor: TARGET.
    #[arg(long, value_name = "TARGET")]
    executor: Option<String>,
    /// A new serial issues a fresh credential after the old one was
    /// revoked (listed under `revoked` in the gateway's config).
    #[arg(long, default_value_t = 1)]
    serial: u32,
    /// Where to write `access-key-id` and `secret-access-key` (mode 0600;
    /// made if absent, files must not exist). Point
    /// PULIH_S3_ACCESS_KEY_ID_FILE and PULIH_S3_SECRET_ACCESS_KEY_FILE at them.
    #[arg(long, value_name = "DIR")]
    out_dir: PathBuf,
}

pub fn credential(a: CredentialArgs) -> Result<u8> {
    let principal = match (&a.agent, &a.reader, &a.executor) {
        (Some(as_), None, None) => {
            let Some((agency, server)) = as_.split_once('/') else {
                bail!("--agent: give AGENCY/SERVER, e.g. dinkes/srv-simpus");
            };
            Principal::Agent {
                agency: agency.into(),
                server: server.into(),
                serial: a.serial,
            }
        }
        (None, Some(agency), None) => Principal::Reader {
            agency: agency.clone(),
            serial: a.serial,
        },
        (None, None, Some(target)) => Principal::Executor {
            target: target.clone(),
            serial: a.serial,
        },
        _ => bail!("give one of --agent AGENCY/SERVER, --reader AGENCY or --executor TARGET"),
    };
    let akid = principal
        .access_key_id()
        .expect("issued principals have ids");
    if Principal::parse(&akid).as_ref() != Some(&principal) {
        bail!(
            "`{akid}` is no valid credential: agency, server and target names use lowercase letters, digits and `-` (at most 63)"
        );
    }
    let key = GatewayKey::load(&a.key_file)?;
    {
        use std::os::unix::fs::DirBuilderExt;
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&a.out_dir)?;
    }
    crate::repo::write_secret(&a.out_dir.join("access-key-id"), &format!("{akid}\n"))?;
    crate::repo::write_secret(
        &a.out_dir.join("secret-access-key"),
        &format!("{}\n", key.secret(&akid)),
    )?;
    println!("{akid}");
    eprintln!(
        "{principal}: credential written to {}/{{access-key-id,secret-access-key}}",
        a.out_dir.display()
    );
    Ok(exit::OK)
}

#[derive(Args)]
pub struct ImportArgs {
    /// The gateway's TOML configuration.
    #[arg(long, env = "PULIH_GATEWAY_CONFIG", value_name = "FILE")]
    config: PathBuf,
    /// The agency whose existing objects (under `<upstream>/AGENCY/`) to
    /// take into the gateway's index.
    agency: String,
}

pub async fn import(a: ImportArgs) -> Result<u8> {
    let gw = pulih_gateway::serve::open(&a.config)?;
    let (n, bytes) = pulih_gateway::import::import(&gw, &a.agency).await?;
    println!(
        "{n} objects ({bytes} bytes) of {} taken into the index, received at the upstream store's own times",
        a.agency
    );
    Ok(exit::OK)
}
