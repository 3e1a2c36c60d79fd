//! Bindings (FORMAT.md §13): which server a dedup space belongs to,
//! signed with the binding key that only readers can derive, so that no
//! agent key can make its snapshots pass for another server's.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use ring::signature::{ED25519, UnparsedPublicKey};
use serde::{Deserialize, Serialize};

use crate::id::{FileId, SpaceId};
pub use crate::keys::{BindingSigner, BindingVerifier};
use crate::layout;
use crate::repo::{ListedSnapshot, Reader, Unreadable};
use crate::storage::Store;
use crate::{Error, Result};

/// The largest object under `bindings/` that is read.
const MAX_BINDING: u64 = 64 << 10;

/// What a space is bound for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// The server's own agent writes there.
    Agent,
    /// The DRC executor replicated a failed-over server back there.
    Failback,
}

/// One binding's body.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Binding {
    pub server: String,
    pub space: SpaceId,
    pub role: Role,
    /// The failover a failback space is for.
    pub failover: Option<String>,
    pub created: i64,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Record {
    body: Binding,
    sig: String,
}

fn signed_bytes(id: &FileId, body: &Binding) -> Vec<u8> {
    [
        b"pulih/v1/binding".as_slice(),
        &id.0,
        &serde_json::to_vec(body).expect("serializes"),
    ]
    .concat()
}

/// A binding record's bytes, signed (what [`write`] stores).
pub fn encode(signer: &BindingSigner, id: &FileId, body: Binding) -> Vec<u8> {
    let sig = hex::encode(signer.sign(&signed_bytes(id, &body)).as_ref());
    serde_json::to_vec(&Record { body, sig }).expect("serializes")
}

/// A binding record from untrusted bytes: the body, if it parses and its
/// signature by the binding key verifies for object id `id`.
pub fn parse(bytes: &[u8], id: &FileId, verifier: &BindingVerifier) -> Result<Binding> {
    let what = || layout::binding(id);
    let r: Record =
        serde_json::from_slice(bytes).map_err(|e| Error::corrupt(what(), e.to_string()))?;
    let key = UnparsedPublicKey::new(&ED25519, verifier.0);
    match hex::decode(&r.sig) {
        Ok(sig) if key.verify(&signed_bytes(id, &r.body), &sig).is_ok() => Ok(r.body),
        _ => Err(Error::corrupt(what(), "its signature does not verify")),
    }
}

/// Stores a new binding (a new object; none is ever overwritten).
pub async fn write(store: &Store, signer: &BindingSigner, body: Binding) -> Result<()> {
    if body.server.is_empty() {
        return Err(Error::Invalid("a binding needs a server name".into()));
    }
    let id = FileId::random();
    store
        .put(&layout::binding(&id), encode(signer, &id, body).into())
        .await
}

/// Every binding that verifies, and the objects under `bindings/` that
/// do not (set aside, FORMAT.md §11).
pub async fn read(
    store: &Store,
    verifier: &BindingVerifier,
) -> Result<(Vec<Binding>, Vec<Unreadable>)> {
    let mut out = Vec::new();
    let mut unreadable = Vec::new();
    for o in store.list(layout::BINDINGS).await? {
        let Some(id) = layout::parse_id::<FileId>(&o.key, layout::BINDINGS) else {
            continue;
        };
        // A binding is a few hundred bytes: a larger object is junk, and
        // is not read (it would cost memory on every selection).
        if o.size > MAX_BINDING {
            let error = Error::corrupt(&o.key, format!("{} bytes, not a binding", o.size));
            unreadable.push(Unreadable {
                name: o.key,
                space: None,
                error,
            });
            continue;
        }
        match parse(&store.get(&o.key).await?, &id, verifier) {
            Ok(b) => out.push(b),
            Err(error) => unreadable.push(Unreadable {
                name: o.key,
                space: None,
                error,
            }),
        }
    }
    Ok((out, unreadable))
}

/// The bindings as selection needs them.
#[derive(Default, Debug)]
pub struct Bindings {
    /// Space → (server, role, failover); a space bound to two servers is
    /// in `conflicts` instead.
    pub spaces: HashMap<SpaceId, Binding>,
    /// Servers with at least one binding.
    pub servers: BTreeSet<String>,
    /// Spaces bound to more than one server, with the servers.
    pub conflicts: BTreeMap<SpaceId, BTreeSet<String>>,
}

impl Bindings {
    pub fn of(list: Vec<Binding>) -> Bindings {
        let mut b = Bindings::default();
        for x in list {
            b.servers.insert(x.server.clone());
            if let Some(c) = b.conflicts.get_mut(&x.space) {
                c.insert(x.server);
                continue;
            }
            match b.spaces.get(&x.space) {
                Some(y) if y.server != x.server => {
                    let y = b.spaces.remove(&x.space).expect("just seen");
                    b.conflicts
                        .insert(x.space, BTreeSet::from([x.server, y.server]));
                }
                Some(_) => {}
                None => {
                    b.spaces.insert(x.space, x);
                }
            }
        }
        b
    }

    /// Loads and checks every binding of the repository in `store`; what
    /// does not verify is logged and left out.
    pub async fn load(store: &Store, verifier: &BindingVerifier) -> Result<Bindings> {
        let (list, unreadable) = read(store, verifier).await?;
        for u in &unreadable {
            tracing::warn!(object = %u.name, error = %u.error, "skipped a binding that does not verify (run `verify`)");
        }
        let b = Bindings::of(list);
        for (space, servers) in &b.conflicts {
            tracing::warn!(space = %space.to_hex(), ?servers, "a space is bound to more than one server: it counts for none");
        }
        Ok(b)
    }

    /// The server space `s` is bound to, if one.
    pub fn server_of(&self, s: &SpaceId) -> Option<&Binding> {
        self.spaces.get(s)
    }
}

/// A server's snapshots, the one received last at the end (FORMAT.md §13).
pub struct ServerSnapshots {
    pub snapshots: Vec<ListedSnapshot>,
    /// No binding names the server (a repository from before bindings):
    /// selected by the `server=` tag its agent writes itself.
    pub by_tag: bool,
    pub bindings: Bindings,
}

impl ServerSnapshots {
    /// The binding of the space `s` was written in (None when by tag).
    pub fn binding_of(&self, s: &ListedSnapshot) -> Option<&Binding> {
        self.bindings.server_of(&s.space)
    }
}

/// The snapshots of `server` written for `role`: those in the spaces
/// bound to it for that role, or, where no binding names the server, those
/// tagged `server=<name>` in spaces no binding names; ordered by receive
/// time (the store's own time of each snapshot object), not by the time
/// the writer claims.
pub async fn server_snapshots(
    reader: &Reader,
    server: &str,
    role: Role,
) -> Result<ServerSnapshots> {
    let verifier = BindingSigner::of(&reader.keys.master).verifier();
    let bindings = Bindings::load(&reader.repo.store, &verifier).await?;
    let by_tag = !bindings.servers.contains(server);
    let tag = format!("server={server}");
    let mut snapshots: Vec<ListedSnapshot> = reader
        .snapshots()
        .await?
        .into_iter()
        .filter(|s| {
            if by_tag {
                // A space bound to another server is that server's, whatever
                // its snapshots are tagged.
                s.snapshot.tags.contains(&tag)
                    && bindings.server_of(&s.space).is_none()
                    && !bindings.conflicts.contains_key(&s.space)
            } else {
                bindings.server_of(&s.space).is_some_and(|b| {
                    b.server == server
                        && b.role == role
                        // A failback space holds that failover's snapshot.
                        && b.failover.as_ref().is_none_or(|f| {
                            s.snapshot.tags.contains(&format!("failback={f}"))
                        })
                })
            }
        })
        .collect();
    if by_tag && !snapshots.is_empty() {
        tracing::warn!(
            %server,
            "no binding names this server: its snapshots are selected by the `server=` tag, which any agent key of the agency can write (bind its space with `pulih repo bind`)"
        );
    }
    snapshots.sort_by_key(|s| (s.stored_at, s.snapshot.time_ns()));
    Ok(ServerSnapshots {
        snapshots,
        by_tag,
        bindings,
    })
}
