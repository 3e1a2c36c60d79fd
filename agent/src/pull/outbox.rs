//! What an agent must tell the controller waits in `<state_dir>/outbox/`
//! (one JSON file each, sent oldest first by name) until the controller
//! acknowledges it: run results for a PD server's agent, drill reports for
//! the DRC executor. What the controller refuses for good, or what cannot
//! be read, moves to `outbox/rejected/`: kept, never retried.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use pulih_client::{AgentClient as Client, ClientError};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::state::{read_json, write_atomic};

const OUTBOX: &str = "outbox";
const REJECTED: &str = "rejected";

/// What an outbox holds and how it is delivered.
pub(crate) trait Delivery {
    type Item: Serialize + DeserializeOwned;
    /// What an item is, for the logs (`result`, `report`).
    const WHAT: &'static str;
    /// An item's id, for the logs.
    fn id(item: &Self::Item) -> &str;
    /// Hands one item to the controller.
    async fn deliver(&self, client: &Client, item: &Self::Item) -> Result<(), ClientError>;
}

pub(crate) struct Outbox<D> {
    dir: PathBuf,
    delivery: D,
}

impl<D: Delivery> Outbox<D> {
    /// The outbox in `state_dir` (made, with the state dir, if absent).
    pub fn create(state_dir: &Path, delivery: D) -> Result<Outbox<D>> {
        let dir = state_dir.join(OUTBOX);
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("cannot create state dir {}", state_dir.display()))?;
        Ok(Outbox { dir, delivery })
    }

    /// Keeps `item` as `file_name` (`….json`) until it is delivered.
    pub fn put(&self, file_name: &str, item: &D::Item) -> Result<()> {
        write_atomic(&self.dir.join(file_name), &serde_json::to_vec(item)?)
    }

    /// Sends what waits, oldest first; stops at the first that cannot be
    /// sent because the controller is unreachable.
    pub async fn flush(&self, client: &Client) -> Result<()> {
        let what = D::WHAT;
        for p in self.files()? {
            let item = match read_json::<D::Item>(&p) {
                Ok(Some(item)) => item,
                Ok(None) => continue,
                Err(e) => {
                    // One bad file must not stop the agent for good.
                    tracing::error!(what, file = %p.display(), error = %format!("{e:#}"), "unreadable; moved to outbox/rejected");
                    self.reject(&p)?;
                    continue;
                }
            };
            let id = D::id(&item);
            match self.delivery.deliver(client, &item).await {
                Ok(()) => {
                    std::fs::remove_file(&p)?;
                    tracing::info!(what, id, "delivered");
                }
                Err(e) if e.is_retryable() => {
                    tracing::debug!(what, error = %e, "controller unreachable; the outbox keeps what waits");
                    return Ok(());
                }
                Err(e) => {
                    // Refused for good: keep it aside rather than retry forever.
                    tracing::error!(what, id, error = %e, "refused; moved to outbox/rejected");
                    self.reject(&p)?;
                }
            }
        }
        Ok(())
    }

    /// The outbox's files, oldest first.
    fn files(&self) -> Result<Vec<PathBuf>> {
        let mut entries: Vec<PathBuf> = std::fs::read_dir(&self.dir)
            .with_context(|| format!("cannot list {}", self.dir.display()))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "json"))
            .collect();
        entries.sort();
        Ok(entries)
    }

    /// Moves a file the controller refused (or that cannot be read) to
    /// `outbox/rejected`, so it is kept but not retried forever.
    fn reject(&self, p: &Path) -> Result<()> {
        let rej = self.dir.join(REJECTED);
        std::fs::create_dir_all(&rej)?;
        std::fs::rename(p, rej.join(p.file_name().unwrap_or_default()))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    #[derive(Serialize, serde::Deserialize)]
    struct Item {
        id: String,
    }

    /// Takes every item but `refused`; `down`: the controller is away.
    #[derive(Default)]
    struct Fake {
        refused: &'static str,
        down: bool,
        got: Mutex<Vec<String>>,
    }

    impl Delivery for Fake {
        type Item = Item;
        const WHAT: &'static str = "item";

        fn id(item: &Item) -> &str {
            &item.id
        }

        async fn deliver(&self, _: &Client, item: &Item) -> Result<(), ClientError> {
            if self.down {
                return Err(ClientError::Unreachable {
                    url: "http://controller".into(),
                    message: "connection refused".into(),
                });
            }
            if item.id == self.refused {
                return Err(ClientError::Rejected {
                    status: 400,
                    code: "bad_request".into(),
                    message: "no".into(),
                    diagnostics: Vec::new(),
                });
            }
            self.got.lock().unwrap().push(item.id.clone());
            Ok(())
        }
    }

    fn client() -> Client {
        Client::new("http://127.0.0.1:9", "test", None, None, false).unwrap()
    }

    fn names(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| e.path().is_file())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    fn put(o: &Outbox<Fake>, name: &str, id: &str) {
        o.put(name, &Item { id: id.into() }).unwrap();
    }

    #[tokio::test]
    async fn delivers_oldest_first_and_sets_aside_what_is_refused_or_unreadable() {
        let state = tempfile::tempdir().unwrap();
        let fake = Fake {
            refused: "b",
            ..Default::default()
        };
        let o = Outbox::create(state.path(), fake).unwrap();
        put(&o, "3-c.json", "c");
        put(&o, "1-a.json", "a");
        put(&o, "2-b.json", "b");
        std::fs::write(o.dir.join("0-torn.json"), b"{not json").unwrap();
        std::fs::write(o.dir.join("notes.txt"), b"not an outbox file").unwrap();
        o.flush(&client()).await.unwrap();
        assert_eq!(*o.delivery.got.lock().unwrap(), ["a", "c"]);
        assert_eq!(names(&o.dir), ["notes.txt"]);
        assert_eq!(
            names(&state.path().join("outbox/rejected")),
            ["0-torn.json", "2-b.json"]
        );
    }

    #[tokio::test]
    async fn keeps_everything_while_the_controller_is_unreachable() {
        let state = tempfile::tempdir().unwrap();
        let fake = Fake {
            down: true,
            ..Default::default()
        };
        let o = Outbox::create(state.path(), fake).unwrap();
        put(&o, "1-a.json", "a");
        put(&o, "2-b.json", "b");
        o.flush(&client()).await.unwrap();
        assert!(o.delivery.got.lock().unwrap().is_empty());
        assert_eq!(names(&o.dir), ["1-a.json", "2-b.json"]);
        assert!(!state.path().join("outbox/rejected").exists());
    }
}
