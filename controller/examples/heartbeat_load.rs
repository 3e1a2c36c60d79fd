//! Scale benchmark (not a test): N simulated agents heartbeat against one
//! controller on SQLite, each every INTERVAL seconds at a random phase
//! (open loop: a slow answer does not slow the offered load). Reports the
//! heartbeat latency percentiles and the compliance view's latency.
//!
//! Start a controller first (`pulih controller --config C`), then:
//! `cargo run --release -p pulih-controller --example heartbeat_load -- URL TOKEN_FILE N [SECONDS] [INTERVAL]`
//! (bench/control_bench.sh does both).

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::Mutex;

fn server_yaml(i: usize) -> String {
    format!(
        "---\napiVersion: pulih.io/v1alpha1\nkind: Server\nmetadata: {{name: srv-{i:05}}}\nspec:\n  perangkatDaerah: pd-{pd:02}\n  location: pusat-data\n  centralization: {{status: centralized}}\n  sources:\n    - path: /srv/data\n  schedule: {{cron: \"{m} {h} * * *\"}}\n",
        pd = i % 40,
        m = i % 60,
        h = i % 4
    )
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    anyhow::ensure!(
        args.len() >= 4,
        "usage: heartbeat_load URL TOKEN_FILE N [SECONDS] [INTERVAL]"
    );
    let base = format!("{}/api/v1", args[1].trim_end_matches('/'));
    let admin = std::fs::read_to_string(&args[2])?.trim().to_string();
    let n: usize = args[3].parse()?;
    let seconds: u64 = args.get(4).map_or(Ok(60), |s| s.parse())?;
    let interval: f64 = args.get(5).map_or(Ok(15.0), |s| s.parse())?;
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(512)
        .build()?;

    // Manifests: 40 agencies, N servers, applied in batches.
    let t0 = Instant::now();
    let mut head = String::from(
        "apiVersion: pulih.io/v1alpha1\nkind: DrcTarget\nmetadata: {name: drc}\nspec: {url: /var/lib/pulih/drc}\n",
    );
    for pd in 0..40 {
        head.push_str(&format!(
            "---\napiVersion: pulih.io/v1alpha1\nkind: PerangkatDaerah\nmetadata: {{name: pd-{pd:02}}}\nspec:\n  code: PD{pd:02}\n  name: Perangkat Daerah {pd}\n  walidata: {{name: W, contact: w@example}}\n  drcTarget: drc\n"
        ));
    }
    let mut batches = vec![head];
    for chunk in (0..n).collect::<Vec<_>>().chunks(2000) {
        batches.push(chunk.iter().map(|&i| server_yaml(i)).collect());
    }
    for (i, b) in batches.iter().enumerate() {
        let body =
            serde_json::json!({"files": [{"name": format!("batch-{i}.yaml"), "content": b}]});
        let r = http
            .post(format!("{base}/manifests"))
            .bearer_auth(&admin)
            .json(&body)
            .send()
            .await?;
        anyhow::ensure!(r.status().is_success(), "apply: {}", r.text().await?);
    }
    eprintln!("applied {n} servers in {:.1}s", t0.elapsed().as_secs_f64());

    // Enrol every agent.
    let t0 = Instant::now();
    let facts = serde_json::json!({"hostname": "sim", "ips": ["10.0.0.1"], "os": "Debian GNU/Linux 12", "agent_version": "0.1.0", "free_disk_bytes": 1u64 << 40});
    let creds = Arc::new(Mutex::new(vec![String::new(); n]));
    let sem = Arc::new(tokio::sync::Semaphore::new(64));
    let mut tasks = Vec::new();
    for i in 0..n {
        let (http, base, admin, facts, creds, sem) = (
            http.clone(),
            base.clone(),
            admin.clone(),
            facts.clone(),
            creds.clone(),
            sem.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let _p = sem.acquire().await?;
            let name = format!("srv-{i:05}");
            let t: serde_json::Value = http
                .post(format!("{base}/servers/{name}/enroll-token"))
                .bearer_auth(&admin)
                .send()
                .await?
                .json()
                .await?;
            let e: serde_json::Value = http
                .post(format!("{base}/agents/enroll"))
                .json(&serde_json::json!({"server": name, "token": t["token"], "facts": facts}))
                .send()
                .await?
                .json()
                .await?;
            creds.lock().await[i] = e["credential"].as_str().unwrap_or_default().to_string();
            anyhow::Ok(())
        }));
    }
    for t in tasks {
        t.await??;
    }
    eprintln!("enrolled {n} agents in {:.1}s", t0.elapsed().as_secs_f64());

    // Heartbeats: each agent every `interval` s at a random phase, for `seconds`.
    let creds = Arc::new(creds.lock().await.clone());
    let lat = Arc::new(Mutex::new(Vec::with_capacity(n * 8)));
    let errors = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let start = tokio::time::Instant::now() + Duration::from_millis(500);
    let end = start + Duration::from_secs(seconds);
    let mut tasks = Vec::new();
    for i in 0..n {
        let (http, base, creds, lat, errors, facts) = (
            http.clone(),
            base.clone(),
            creds.clone(),
            lat.clone(),
            errors.clone(),
            facts.clone(),
        );
        let phase = Duration::from_secs_f64(interval * rand::random::<f64>());
        tasks.push(tokio::spawn(async move {
            let mut next = start + phase;
            let body = serde_json::json!({"facts": facts}).to_string();
            while next < end {
                tokio::time::sleep_until(next).await;
                let t = Instant::now();
                let r = http
                    .post(format!("{base}/agents/srv-{i:05}/heartbeat"))
                    .bearer_auth(&creds[i])
                    .header("content-type", "application/json")
                    .body(body.clone())
                    .send()
                    .await;
                match r {
                    Ok(r) if r.status().is_success() => {
                        let _ = r.bytes().await;
                        lat.lock().await.push(t.elapsed().as_secs_f64() * 1000.0);
                    }
                    _ => {
                        errors.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    }
                }
                next += Duration::from_secs_f64(interval);
            }
        }));
    }
    for t in tasks {
        t.await?;
    }
    let mut l = lat.lock().await.clone();
    l.sort_by(|a, b| a.total_cmp(b));
    let rate = l.len() as f64 / seconds as f64;
    println!(
        "agents={n} interval={interval}s duration={seconds}s heartbeats={} rate={rate:.0}/s errors={} p50={:.1}ms p90={:.1}ms p99={:.1}ms max={:.1}ms",
        l.len(),
        errors.load(std::sync::atomic::Ordering::Relaxed),
        percentile(&l, 0.5),
        percentile(&l, 0.9),
        percentile(&l, 0.99),
        l.last().copied().unwrap_or(f64::NAN)
    );

    // The compliance view with N servers.
    let mut c = Vec::new();
    let mut size = 0;
    for _ in 0..10 {
        let t = Instant::now();
        let body = http
            .get(format!("{base}/compliance"))
            .bearer_auth(&admin)
            .send()
            .await?
            .bytes()
            .await?;
        c.push(t.elapsed().as_secs_f64() * 1000.0);
        size = body.len();
    }
    c.sort_by(|a, b| a.total_cmp(b));
    println!(
        "compliance servers={n} bytes={size} p50={:.1}ms max={:.1}ms",
        percentile(&c, 0.5),
        c.last().copied().unwrap_or(f64::NAN)
    );
    Ok(())
}
