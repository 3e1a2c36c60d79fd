//! The controller's background tasks, tracked in one place: named workers
//! (the loops in `workers.rs`) and one-shot tasks a request starts (a
//! plan's steps, a maintenance run). All stop on one `CancellationToken`;
//! [`Tasks::shutdown`] waits for them, bounded. Each worker's state (idle,
//! running, stopped; its last run) is kept for the dashboard.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// What a worker is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WorkerState {
    /// Waiting for its next run.
    Idle,
    Running,
    /// Ended (shutdown, or nothing left to do).
    Stopped,
}

impl WorkerState {
    pub fn as_str(self) -> &'static str {
        match self {
            WorkerState::Idle => "idle",
            WorkerState::Running => "running",
            WorkerState::Stopped => "stopped",
        }
    }
}

/// One worker as the dashboard shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct WorkerStatus {
    pub name: &'static str,
    pub state: WorkerState,
    /// Completed runs since the controller started.
    pub runs: u64,
    /// When the last run ended (Unix seconds).
    pub last_run: Option<i64>,
}

type Board = Arc<Mutex<BTreeMap<&'static str, WorkerStatus>>>;

pub struct Tasks {
    tracker: TaskTracker,
    cancel: CancellationToken,
    board: Board,
}

/// A running worker's handle: marks its runs and waits between them.
pub struct Worker {
    name: &'static str,
    board: Board,
    cancel: CancellationToken,
}

impl Worker {
    fn set(&self, f: impl FnOnce(&mut WorkerStatus)) {
        let mut b = self.board.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(s) = b.get_mut(self.name) {
            f(s);
        }
    }

    /// A run begins.
    pub fn begin(&self) {
        self.set(|s| s.state = WorkerState::Running);
    }

    /// A run ended at `at` (Unix seconds).
    pub fn end(&self, at: i64) {
        self.set(|s| {
            s.state = WorkerState::Idle;
            s.runs += 1;
            s.last_run = Some(at);
        });
    }

    /// Waits `d`; false when the controller is shutting down instead.
    pub async fn sleep(&self, d: Duration) -> bool {
        tokio::select! {
            _ = self.cancel.cancelled() => false,
            _ = tokio::time::sleep(d) => true,
        }
    }

    /// Returns once the controller is shutting down.
    pub async fn stopped(&self) {
        self.cancel.cancelled().await
    }
}

impl Tasks {
    pub fn new(cancel: CancellationToken) -> Self {
        Tasks {
            tracker: TaskTracker::new(),
            cancel,
            board: Default::default(),
        }
    }

    /// Starts the worker `name`: `body` runs until it returns (it should
    /// return once [`Worker::sleep`] says the controller is shutting down).
    pub fn start_worker<F, Fut>(&self, name: &'static str, body: F)
    where
        F: FnOnce(Worker) -> Fut,
        Fut: Future<Output = ()> + Send + 'static,
    {
        self.board.lock().unwrap_or_else(|p| p.into_inner()).insert(
            name,
            WorkerStatus {
                name,
                state: WorkerState::Idle,
                runs: 0,
                last_run: None,
            },
        );
        let worker = Worker {
            name,
            board: self.board.clone(),
            cancel: self.cancel.clone(),
        };
        let board = self.board.clone();
        let run = body(worker);
        self.tracker.spawn(async move {
            run.await;
            if let Some(s) = board
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .get_mut(name)
            {
                s.state = WorkerState::Stopped;
            }
            tracing::info!(worker = name, "worker stopped");
        });
    }

    /// Runs a one-shot task (started by a request) in the background; it
    /// is dropped, so ended, when the controller shuts down.
    pub fn spawn<F>(&self, what: &'static str, task: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let cancel = self.cancel.clone();
        self.tracker.spawn(async move {
            tokio::select! {
                _ = cancel.cancelled() => tracing::warn!(task = what, "background task cancelled by the shutdown"),
                _ = task => {}
            }
        });
    }

    /// Every worker's state, by name.
    pub fn workers(&self) -> Vec<WorkerStatus> {
        self.board
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .cloned()
            .collect()
    }

    /// How many tasks (workers and one-shot) are still running.
    pub fn len(&self) -> usize {
        self.tracker.len()
    }

    pub fn is_empty(&self) -> bool {
        self.tracker.is_empty()
    }

    /// Cancels every task and waits for them, at most `grace`; false when
    /// some were still running then.
    pub async fn shutdown(&self, grace: Duration) -> bool {
        self.cancel.cancel();
        self.tracker.close();
        tokio::time::timeout(grace, self.tracker.wait())
            .await
            .is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn workers_and_one_shot_tasks_stop_on_shutdown() {
        let tasks = Tasks::new(CancellationToken::new());
        tasks.start_worker("ticker", |w| async move {
            loop {
                w.begin();
                w.end(7);
                if !w.sleep(Duration::from_secs(3600)).await {
                    return;
                }
            }
        });
        tasks.spawn("forever", std::future::pending());
        tokio::task::yield_now().await;
        assert_eq!(tasks.len(), 2);
        let s = &tasks.workers()[0];
        assert_eq!(
            (s.name, s.state, s.runs, s.last_run),
            ("ticker", WorkerState::Idle, 1, Some(7))
        );
        assert!(tasks.shutdown(Duration::from_secs(5)).await);
        assert!(tasks.is_empty());
        assert_eq!(tasks.workers()[0].state, WorkerState::Stopped);
    }
}
