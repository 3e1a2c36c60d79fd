//! The link of `pulih_test_support::netem` against small servers on
//! loopback: it adds the round-trip time (two on a new connection), caps
//! one stream at the rate and several together at the same rate, stays
//! pipelined, passes half-closes, goes dead when told, and closes
//! everything when dropped; the `pulih-netem` binary is the same link.
//! Each check fails if the delay or the cap were not applied; the
//! throughput is measured over the steady part of a transfer and the
//! upper bounds of a delay on the fastest of a few tries, so a loaded
//! machine does not make it flaky.

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use pulih_test_support::netem::{Link, LinkSpec};
use rand::RngCore;

const MS: Duration = Duration::from_millis(1);

/// A server on loopback running `handle` on each connection, each in its
/// own thread.
fn server(handle: impl Fn(TcpStream) + Send + Sync + 'static) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let handle = Arc::new(handle);
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let handle = handle.clone();
            std::thread::spawn(move || handle(conn.unwrap()));
        }
    });
    addr
}

/// Sends back what it reads, until the end.
fn echo(mut conn: TcpStream) {
    conn.set_nodelay(true).unwrap();
    let mut buf = [0u8; 4096];
    loop {
        match conn.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => {
                if conn.write_all(&buf[..n]).is_err() {
                    return;
                }
            }
        }
    }
}

/// What a sink received on one connection.
struct Received {
    total: u64,
    /// When the total first reached the sink's `skip` bytes, and what it
    /// was then: the steady part of the transfer starts there.
    steady_from: Option<(Instant, u64)>,
    last: Instant,
    hash: blake3::Hash,
}

impl Received {
    /// Bits per second from the steady start to the last byte.
    fn steady_rate(&self) -> f64 {
        let (from, bytes) = self
            .steady_from
            .expect("the transfer passed the skipped part");
        (self.total - bytes) as f64 * 8.0 / (self.last - from).as_secs_f64()
    }
}

/// A server that reads each connection to its end, reports what it
/// received, then answers with the byte count and the BLAKE3 hash of the
/// bytes and closes.
fn sink(skip: u64) -> (SocketAddr, mpsc::Receiver<Received>) {
    let (tx, rx) = mpsc::channel();
    let tx = Mutex::new(tx);
    let addr = server(move |mut conn| {
        let mut hasher = blake3::Hasher::new();
        let mut buf = vec![0u8; 64 * 1024];
        let mut total = 0u64;
        let mut steady_from = None;
        let mut last = Instant::now();
        loop {
            let n = match conn.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            last = Instant::now();
            total += n as u64;
            hasher.update(&buf[..n]);
            if steady_from.is_none() && total >= skip {
                steady_from = Some((last, total));
            }
        }
        let hash = hasher.finalize();
        let mut answer = total.to_be_bytes().to_vec();
        answer.extend_from_slice(hash.as_bytes());
        let _ = conn.write_all(&answer);
        let _ = tx.lock().unwrap().send(Received {
            total,
            steady_from,
            last,
            hash,
        });
    });
    (addr, rx)
}

fn random(n: usize) -> Vec<u8> {
    let mut data = vec![0u8; n];
    rand::thread_rng().fill_bytes(&mut data);
    data
}

/// Sends `data`, half-closes, and reads the sink's whole answer (to the
/// end, so the sink's close came back too).
fn upload(to: SocketAddr, data: &[u8]) -> Vec<u8> {
    let mut conn = TcpStream::connect(to).unwrap();
    conn.write_all(data).unwrap();
    conn.shutdown(Shutdown::Write).unwrap();
    let mut answer = Vec::new();
    conn.read_to_end(&mut answer).unwrap();
    answer
}

fn answer_of(data: &[u8]) -> Vec<u8> {
    let mut answer = (data.len() as u64).to_be_bytes().to_vec();
    answer.extend_from_slice(blake3::hash(data).as_bytes());
    answer
}

/// The time one small write takes to come back from an echo server.
fn exchange(conn: &mut TcpStream) -> Duration {
    let msg = [42u8; 64];
    let mut back = [0u8; 64];
    let t = Instant::now();
    conn.write_all(&msg).unwrap();
    conn.read_exact(&mut back).unwrap();
    assert_eq!(back, msg);
    t.elapsed()
}

fn mbit(bps: f64) -> String {
    format!("{:.1} Mbit/s", bps / 1e6)
}

#[test]
fn one_stream_reaches_the_cap_and_no_more() {
    let (sink, received) = sink(512 * 1024);
    let cap = 40_000_000;
    let link = Link::start(
        sink,
        LinkSpec {
            rtt: 20 * MS,
            rate_bps: Some(cap),
            ..LinkSpec::default()
        },
    );
    let data = random(3 << 20);
    let t = Instant::now();
    assert_eq!(upload(link.addr(), &data), answer_of(&data));
    let took = t.elapsed();
    let r = received.recv().unwrap();
    let rate = r.steady_rate();
    let ratio = rate / cap as f64;
    eprintln!(
        "3 MiB at a {} cap: {} steady, {took:?} in all",
        mbit(cap as f64),
        mbit(rate)
    );
    assert!(
        (0.85..=1.05).contains(&ratio),
        "one stream ran at {} under a {} cap ({:.0} %)",
        mbit(rate),
        mbit(cap as f64),
        ratio * 100.0
    );
    // The whole transfer cannot beat the cap either (its burst, 10 ms at
    // the rate, aside).
    let floor = ((3 << 20) - 64 * 1024) as f64 * 8.0 / cap as f64;
    assert!(took.as_secs_f64() >= floor, "{took:?} < {floor} s");
}

#[test]
fn connections_share_the_cap_of_a_direction() {
    // Three downloads at once from a server that sends 1 MiB and closes.
    let each: u64 = 1 << 20;
    let source = server(move |mut conn| {
        let _ = conn.write_all(&random(each as usize));
    });
    let cap = 40_000_000;
    let link = Link::start(
        source,
        LinkSpec {
            rate_bps: Some(cap),
            ..LinkSpec::default()
        },
    );
    let skip = 512 * 1024;
    let total = Arc::new(AtomicU64::new(0));
    let steady_from = Arc::new(Mutex::new(None));
    let clients: Vec<_> = (0..3)
        .map(|_| {
            let (total, steady_from) = (total.clone(), steady_from.clone());
            let addr = link.addr();
            std::thread::spawn(move || {
                let mut conn = TcpStream::connect(addr).unwrap();
                let mut buf = vec![0u8; 64 * 1024];
                let (mut mine, mut last) = (0u64, Instant::now());
                loop {
                    let n = conn.read(&mut buf).unwrap() as u64;
                    if n == 0 {
                        return (mine, last);
                    }
                    last = Instant::now();
                    mine += n;
                    let now = total.fetch_add(n, Ordering::SeqCst) + n;
                    if now >= skip && now - n < skip {
                        *steady_from.lock().unwrap() = Some((last, now));
                    }
                }
            })
        })
        .collect();
    let ends: Vec<(u64, Instant)> = clients.into_iter().map(|c| c.join().unwrap()).collect();
    for (got, _) in &ends {
        assert_eq!(*got, each, "every connection got all its bytes");
    }
    let last = ends.iter().map(|(_, t)| *t).max().unwrap();
    let (from, bytes) = steady_from.lock().unwrap().unwrap();
    let rate = (3 * each - bytes) as f64 * 8.0 / (last - from).as_secs_f64();
    let ratio = rate / cap as f64;
    eprintln!(
        "3 × 1 MiB at a {} cap: {} together",
        mbit(cap as f64),
        mbit(rate)
    );
    assert!(
        (0.85..=1.05).contains(&ratio),
        "three streams together ran at {} under a {} cap ({:.0} %): the cap is the direction's, shared",
        mbit(rate),
        mbit(cap as f64),
        ratio * 100.0
    );
}

#[test]
fn a_round_trip_takes_the_rtt_more_and_a_new_connection_two() {
    let echo = server(echo);
    let mut direct = TcpStream::connect(echo).unwrap();
    direct.set_nodelay(true).unwrap();
    let fastest = (0..3).map(|_| exchange(&mut direct)).min().unwrap();
    assert!(fastest < 10 * MS, "direct: {fastest:?}");

    let rtt = 100 * MS;
    let link = Link::start(
        echo,
        LinkSpec {
            rtt,
            ..LinkSpec::default()
        },
    );
    // A new connection: the handshake's round trip, then the exchange's.
    let fresh = || {
        let t = Instant::now();
        let mut conn = TcpStream::connect(link.addr()).unwrap();
        conn.set_nodelay(true).unwrap();
        let first = exchange(&mut conn);
        (conn, first, t.elapsed())
    };
    let (_, _, once) = fresh();
    let (mut conn, first, with_connect) = fresh();
    // Then on the open connection, one round trip each.
    let later: Vec<Duration> = (0..3).map(|_| exchange(&mut conn)).collect();
    eprintln!(
        "direct {fastest:?}; through {rtt:?}: connect and first {once:?}, {with_connect:?}, then {later:?}"
    );
    for d in [once, with_connect] {
        assert!(
            d >= 2 * rtt,
            "connect and a first exchange: {d:?} < {:?} (handshake and a round trip)",
            2 * rtt
        );
    }
    assert!(first >= 2 * rtt - 5 * MS, "first exchange {first:?}");
    let fastest = once.min(with_connect);
    assert!(
        fastest < 2 * rtt + 40 * MS,
        "connect and a first exchange: {fastest:?} at best"
    );
    for d in &later {
        assert!(*d >= rtt, "an exchange took {d:?} < the RTT {rtt:?}");
    }
    let fastest = *later.iter().min().unwrap();
    assert!(fastest < rtt + 40 * MS, "fastest exchange {fastest:?}");
}

#[test]
fn a_transfer_is_pipelined_not_stop_and_wait() {
    let (sink, received) = sink(0);
    let rtt = 200 * MS;
    let link = Link::start(
        sink,
        LinkSpec {
            rtt,
            ..LinkSpec::default()
        },
    );
    let data = random(20_000_000);
    let t = Instant::now();
    // Half-closed after the data; the answer comes back after it.
    let answer = upload(link.addr(), &data);
    let took = t.elapsed();
    eprintln!("20 MB through {rtt:?}, no cap: {took:?}");
    assert_eq!(answer, answer_of(&data), "every byte, in order");
    let r = received.recv().unwrap();
    assert_eq!((r.total, r.hash), (20_000_000, blake3::hash(&data)));
    // A handshake, the bytes' way there and the answer's way back: two
    // RTTs; stop-and-wait, 32 KiB a round trip, would take two minutes.
    assert!(took >= 2 * rtt, "{took:?}: the delay was not applied");
    assert!(
        took < Duration::from_millis(1500),
        "{took:?}: not pipelined"
    );
}

#[test]
fn a_cut_link_passes_its_bytes_then_nothing_not_even_the_end() {
    let (sink, received) = sink(0);
    let cut = 100_000;
    let link = Link::start(
        sink,
        LinkSpec {
            rtt: 20 * MS,
            cut_after: Some(cut),
            ..LinkSpec::default()
        },
    );
    let data = random(300_000);
    let mut dead = TcpStream::connect(link.addr()).unwrap();
    dead.write_all(&data).unwrap();
    dead.shutdown(Shutdown::Write).unwrap();
    // Neither the end of the upload nor anything else gets through, and
    // the client's side is held open, silent.
    assert!(
        received.recv_timeout(300 * MS).is_err(),
        "the sink saw the end through a dead link"
    );
    dead.set_read_timeout(Some(100 * MS)).unwrap();
    let err = dead.read(&mut [0u8; 16]).unwrap_err();
    assert!(
        matches!(err.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut),
        "the client's side was closed: {err}"
    );
    // The next connection passes.
    assert_eq!(upload(link.addr(), &data), answer_of(&data));
    assert_eq!(received.recv().unwrap().total, data.len() as u64);
    assert_eq!(link.connections(), 2);
    // The client giving up does not get through either…
    drop(dead);
    assert!(received.recv_timeout(200 * MS).is_err());
    // …stopping the link does: the first `cut` bytes arrived, no more.
    drop(link);
    let r = received.recv_timeout(Duration::from_secs(5)).unwrap();
    assert_eq!(
        (r.total, r.hash),
        (cut, blake3::hash(&data[..cut as usize]))
    );
}

#[test]
fn dropping_the_link_closes_its_connections_and_its_port() {
    let echo = server(echo);
    let link = Link::start(
        echo,
        LinkSpec {
            rtt: 50 * MS,
            rate_bps: Some(1_000_000),
            ..LinkSpec::default()
        },
    );
    let addr = link.addr();
    let mut conn = TcpStream::connect(addr).unwrap();
    exchange(&mut conn);
    // Bytes on the way when it stops, and more waiting for the cap.
    conn.write_all(&[1u8; 200_000]).unwrap();
    let t = Instant::now();
    drop(link);
    assert!(
        t.elapsed() < Duration::from_secs(1),
        "drop took {:?}",
        t.elapsed()
    );
    conn.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    let mut rest = Vec::new();
    match conn.read_to_end(&mut rest) {
        Ok(_) => {}
        Err(e) => assert!(
            !matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut),
            "the connection was left open: {e}"
        ),
    }
    assert!(TcpStream::connect(addr).is_err(), "still listening");
}

#[test]
fn the_binary_prints_its_address_and_is_the_same_link() {
    use std::io::BufRead;
    use std::process::{Command, Stdio};
    let echo = server(echo);
    let mut child = Command::new(env!("CARGO_BIN_EXE_pulih-netem"))
        .args([
            "--to",
            &echo.to_string(),
            "--rtt",
            "0.1s",
            "--rate",
            "8mbit",
        ])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    let addr: SocketAddr = first
        .trim()
        .parse()
        .unwrap_or_else(|e| panic!("first line `{first}`: {e}"));
    let mut conn = TcpStream::connect(addr).unwrap();
    conn.set_nodelay(true).unwrap();
    exchange(&mut conn);
    let d = exchange(&mut conn);
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(d >= 100 * MS, "an exchange through --rtt 0.1s took {d:?}");
}
