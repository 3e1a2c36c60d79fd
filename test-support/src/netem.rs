//! A WAN link between a client and a store on one machine, for a kernel
//! without netem (`tc … netem delay`, `tbf`): a TCP proxy on loopback
//! that delays and caps the bytes it passes. Tests put it between Pulih,
//! restic or rustic and Garage ([`Link::start`]); the benchmark scripts
//! run the `pulih-netem` binary, the same link as a process.
//!
//! What it does, per connection (each accepted connection opens its own
//! connection to the upstream address, and has two directions):
//! - **Delay**: a reader stamps each chunk it reads (at most 32 KiB) with
//!   its arrival time and queues it; a writer hands it on when that time
//!   plus half the round-trip time has come. Both run at once, so the
//!   link is pipelined: a transfer takes its size over the rate plus one
//!   delay, not a round trip per chunk.
//! - **Connection set-up**: a TCP handshake costs a round trip before the
//!   first byte goes. The client's `connect` returns at once (the proxy's
//!   kernel answers it), so instead nothing the client sends counts as
//!   sent before one RTT after the connect, and nothing the server sends
//!   before 1.5 RTT: the first answer arrives two RTTs after the connect,
//!   as over a real link. Later exchanges on the connection cost one RTT.
//! - **Bandwidth**: with [`LinkSpec::rate_bps`], a token bucket per
//!   direction, shared by every connection in that direction, as a link
//!   is: one stream reaches the rate, several share it. Its burst is
//!   32 KiB or 10 ms at the rate, whichever is larger; writes go in pieces
//!   of about a millisecond at the rate (1–16 KiB).
//! - **Half-close and close**: when one side ends its sending (FIN), the
//!   other side's socket is shut for writing after the delay; the other
//!   direction keeps flowing. A failed read (a reset) closes the other
//!   side both ways; a failed write closes the side that sent.
//! - **A dead link** ([`LinkSpec::cut_after`]): the first connection
//!   passes that many bytes toward the upstream, then nothing either way,
//!   not even a close: what a link that died mid-upload looks like (no
//!   reset reaches the sender, which learns only by its own timeout).
//!   Its sockets stay open until both sides closed theirs, or the link
//!   stops.
//! - Dropping the [`Link`] closes its listener and every connection and
//!   waits for its threads.
//!
//! Limits:
//! - TCP only; meant for loopback (upstream can be any address).
//! - No loss, reordering or jitter.
//! - The client's TCP talks to the proxy over loopback: its congestion
//!   control sees no RTT (no slow start over the link, no window limit)
//!   and both kernels' socket buffers hold bytes the link does not see
//!   yet. What the link models is the time a request and its answer
//!   spend on the way, and the rate.
//! - Bytes in flight per connection and direction are bounded (the rate
//!   times the delay plus 100 ms at the rate or 256 KiB; 64 MiB uncapped),
//!   beyond which the reader waits and the sender's writes block, as
//!   with a full window. Uncapped at 200 ms RTT that is about 670 MB/s.
//! - Delay granularity is the OS timer and scheduler: well under a
//!   millisecond on an idle machine (the tests see 100.4 ms for 100), a
//!   few on a loaded one; a writer late by less than the burst's 10 ms
//!   catches up, so the rate holds.
//! - A reset is passed on as a close (std cannot send a reset); a refused
//!   upstream connection closes the client's connection one RTT later.
//! - Threads: two per direction and one per connection; fine for the
//!   tens of connections an S3 client opens.

mod bucket;
mod direction;
mod stop;
mod units;
mod wire;

use std::collections::HashMap;
use std::io;
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use bucket::Bucket;
use direction::Direction;
use stop::Stop;

pub use units::{parse_duration, parse_rate};

/// How long the proxy waits for the upstream to accept a connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// The most bytes in flight per connection and direction with no cap.
const UNCAPPED_IN_FLIGHT: usize = 64 << 20;

/// What the link does to the bytes it passes.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LinkSpec {
    /// The round-trip time the link adds: half of it each way.
    pub rtt: Duration,
    /// The bandwidth cap in bits per second, each direction on its own,
    /// shared by all connections of that direction; `None`: no cap.
    pub rate_bps: Option<u64>,
    /// The first connection goes dead after passing this many bytes
    /// toward the upstream: nothing more passes either way, not even a
    /// close; its sockets are held open until both sides closed theirs
    /// (or the link stops).
    pub cut_after: Option<u64>,
}

/// A link listening on loopback, forwarding to one upstream address;
/// stops, closing its connections, when dropped.
pub struct Link {
    addr: SocketAddr,
    shared: Arc<Shared>,
    accept: Option<JoinHandle<()>>,
}

struct Shared {
    upstream: SocketAddr,
    spec: LinkSpec,
    /// Client to server, and server to client.
    up: Option<Arc<Bucket>>,
    down: Option<Arc<Bucket>>,
    bound: usize,
    stop: Arc<Stop>,
    connections: AtomicUsize,
    open: Mutex<Open>,
}

/// The sockets of the connections in progress, so stopping can shut them
/// (which wakes their readers and writers).
#[derive(Default)]
struct Open {
    closed: bool,
    next: u64,
    sockets: HashMap<u64, [TcpStream; 2]>,
}

impl Link {
    /// A link on 127.0.0.1 (a free port) to `upstream`; panics when it
    /// cannot listen or `upstream` is no address.
    pub fn start(upstream: impl ToSocketAddrs, spec: LinkSpec) -> Link {
        Link::bind("127.0.0.1:0", upstream, spec)
            .unwrap_or_else(|e| panic!("start a network link: {e}"))
    }

    /// A link listening on `listen`, forwarding to `upstream`.
    pub fn bind(
        listen: impl ToSocketAddrs,
        upstream: impl ToSocketAddrs,
        spec: LinkSpec,
    ) -> io::Result<Link> {
        let upstream = upstream
            .to_socket_addrs()
            .and_then(|mut a| {
                a.next().ok_or_else(|| {
                    io::Error::new(io::ErrorKind::InvalidInput, "no address to connect to")
                })
            })
            .map_err(|e| io::Error::new(e.kind(), format!("the upstream address: {e}")))?;
        let listener = TcpListener::bind(listen)
            .map_err(|e| io::Error::new(e.kind(), format!("listen: {e}")))?;
        let addr = listener.local_addr()?;
        let now = Instant::now();
        let bucket = |rate| Arc::new(Bucket::new(rate, now));
        let shared = Arc::new(Shared {
            upstream,
            up: spec.rate_bps.map(bucket),
            down: spec.rate_bps.map(bucket),
            bound: in_flight_bound(&spec),
            spec,
            stop: Arc::new(Stop::default()),
            connections: AtomicUsize::new(0),
            open: Mutex::new(Open::default()),
        });
        let accepting = shared.clone();
        let accept = spawn("netem-accept", move || accept_loop(listener, accepting))?;
        Ok(Link {
            addr,
            shared,
            accept: Some(accept),
        })
    }

    /// The address it listens on (connect the client here).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// How many connections it accepted so far.
    pub fn connections(&self) -> usize {
        self.shared.connections.load(Ordering::SeqCst)
    }

    /// What it does.
    pub fn spec(&self) -> &LinkSpec {
        &self.shared.spec
    }
}

impl Drop for Link {
    fn drop(&mut self) {
        self.shared.stop.set();
        {
            let mut open = self.shared.open.lock().unwrap();
            open.closed = true;
            for socket in open.sockets.values().flatten() {
                let _ = socket.shutdown(Shutdown::Both);
            }
        }
        // Wake the accept loop, which then sees the stop.
        let mut wake = self.addr;
        if wake.ip().is_unspecified() {
            wake.set_ip(match wake {
                SocketAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
                SocketAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
            });
        }
        let _ = TcpStream::connect_timeout(&wake, Duration::from_secs(1));
        if let Some(accept) = self.accept.take() {
            let _ = accept.join();
        }
    }
}

/// The rate times the delay (what is on the way) plus a queue of 100 ms
/// at the rate or 256 KiB, whichever is larger.
fn in_flight_bound(spec: &LinkSpec) -> usize {
    match spec.rate_bps {
        None => UNCAPPED_IN_FLIGHT,
        Some(rate) => {
            let bytes_per_sec = rate as f64 / 8.0;
            let on_the_way = bytes_per_sec * (spec.rtt / 2).as_secs_f64();
            (on_the_way + (bytes_per_sec / 10.0).max(256.0 * 1024.0)) as usize
        }
    }
}

fn spawn(name: &str, f: impl FnOnce() + Send + 'static) -> io::Result<JoinHandle<()>> {
    std::thread::Builder::new()
        .name(name.into())
        .stack_size(256 * 1024)
        .spawn(f)
}

fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    let mut connections: Vec<JoinHandle<()>> = Vec::new();
    for client in listener.incoming() {
        let accepted = Instant::now();
        if shared.stop.is_set() {
            break;
        }
        connections.retain(|c| !c.is_finished());
        let client = match client {
            Ok(c) => c,
            Err(e) => {
                eprintln!("pulih-netem: accept: {e}");
                shared
                    .stop
                    .wait_until(Instant::now() + Duration::from_millis(50));
                continue;
            }
        };
        let serving = shared.clone();
        match spawn("netem-conn", move || serve(&serving, client, accepted)) {
            Ok(c) => connections.push(c),
            Err(e) => eprintln!("pulih-netem: start a connection's thread: {e}"),
        }
    }
    for c in connections {
        let _ = c.join();
    }
}

/// One connection, from its accept to the end of both directions.
fn serve(shared: &Shared, client: TcpStream, accepted: Instant) {
    let first = shared.connections.fetch_add(1, Ordering::SeqCst) == 0;
    let rtt = shared.spec.rtt;
    let server = match TcpStream::connect_timeout(&shared.upstream, CONNECT_TIMEOUT) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("pulih-netem: connect to {}: {e}", shared.upstream);
            // A refusal reaches the client one round trip after its connect.
            shared.stop.wait_until(accepted + rtt);
            return;
        }
    };
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    let Some(id) = shared.register(&client, &server) else {
        return;
    };
    let mut threads = Vec::new();
    if let Err(e) = shared.start(&client, &server, accepted, first, &mut threads) {
        eprintln!("pulih-netem: start a connection: {e}");
        let _ = client.shutdown(Shutdown::Both);
        let _ = server.shutdown(Shutdown::Both);
    }
    drop((client, server));
    for t in threads {
        let _ = t.join();
    }
    shared.open.lock().unwrap().sockets.remove(&id);
}

impl Shared {
    /// Notes a connection's sockets; None once the link is stopping.
    fn register(&self, client: &TcpStream, server: &TcpStream) -> Option<u64> {
        let mut open = self.open.lock().unwrap();
        if open.closed {
            return None;
        }
        let sockets = [client.try_clone().ok()?, server.try_clone().ok()?];
        open.next += 1;
        let id = open.next;
        open.sockets.insert(id, sockets);
        Some(id)
    }

    /// Starts both directions of a connection accepted at `accepted`.
    fn start(
        &self,
        client: &TcpStream,
        server: &TcpStream,
        accepted: Instant,
        first: bool,
        threads: &mut Vec<JoinHandle<()>>,
    ) -> io::Result<()> {
        let rtt = self.spec.rtt;
        let dead = Arc::new(AtomicBool::new(false));
        let up = Direction {
            name: "up",
            from: client.try_clone()?,
            to: server.try_clone()?,
            floor: accepted + rtt,
            delay: rtt / 2,
            bound: self.bound,
            bucket: self.up.clone(),
            cut_after: self.spec.cut_after.filter(|_| first),
            dead: dead.clone(),
            stop: self.stop.clone(),
        };
        let down = Direction {
            name: "down",
            from: server.try_clone()?,
            to: client.try_clone()?,
            floor: accepted + rtt + rtt / 2,
            delay: rtt / 2,
            bound: self.bound,
            bucket: self.down.clone(),
            cut_after: None,
            dead,
            stop: self.stop.clone(),
        };
        threads.extend(up.spawn()?);
        threads.extend(down.spawn()?);
        Ok(())
    }
}
