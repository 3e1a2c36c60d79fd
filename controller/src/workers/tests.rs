use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use crate::config::{ControllerConfig, MaintenanceConfig};
use crate::state::tasks::WorkerState;

#[tokio::test]
async fn every_worker_has_stopped_after_shutdown() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = ControllerConfig::new(dir.path().to_path_buf());
    config.listen = "127.0.0.1:0".parse().unwrap();
    config.maintenance = Some(MaintenanceConfig {
        schedule: "0 3 * * *".parse().unwrap(),
        timezone: Default::default(),
        keys_dir: dir.path().join("keys"),
        grace: Duration::from_secs(3600),
        s3_access_key_id_file: None,
        s3_secret_access_key_file: None,
    });
    let cancel = CancellationToken::new();
    let running = crate::start(config, cancel.clone()).await.unwrap();
    let st = running.state.clone();
    // A one-shot task that would never end by itself (a plan's step).
    st.tasks.spawn("test", std::future::pending());
    // The recovery schedule runs at once; the maintenance one waits.
    for _ in 0..500 {
        if st.tasks.workers().iter().any(|w| w.runs > 0) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let names: Vec<&str> = st.tasks.workers().iter().map(|w| w.name).collect();
    assert_eq!(
        names,
        ["gone-sweep", "maintenance-schedule", "recovery-schedule"]
    );
    assert!(
        st.tasks
            .workers()
            .iter()
            .all(|w| w.state != WorkerState::Stopped)
    );
    assert_eq!(st.tasks.len(), 4);

    let asked = Instant::now();
    cancel.cancel();
    tokio::time::timeout(Duration::from_secs(15), running.task)
        .await
        .expect("the controller stops within the bound")
        .unwrap()
        .unwrap();
    assert!(
        asked.elapsed() < crate::SHUTDOWN_GRACE,
        "no task waited for the grace period"
    );
    assert!(st.tasks.is_empty(), "every task finished");
    for w in st.tasks.workers() {
        assert_eq!(w.state, WorkerState::Stopped, "{}", w.name);
    }
    let recovery = &st.tasks.workers()[2];
    assert!(recovery.runs >= 1 && recovery.last_run.is_some());
}
