//! Loopback: free ports for servers a test starts, and a plain HTTP GET.

use std::net::TcpListener;

/// A free TCP port on 127.0.0.1 (free when asked; a test binds it soon).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `GET PATH` over HTTP/1.0 from `host:port`: the whole answer, status
/// line and headers included.
pub fn http_get(host: &str, port: u16, path: &str) -> String {
    use std::io::{Read, Write};
    let mut conn = std::net::TcpStream::connect((host, port))
        .unwrap_or_else(|e| panic!("connect to {host}:{port}: {e}"));
    conn.write_all(format!("GET {path} HTTP/1.0\r\n\r\n").as_bytes())
        .unwrap();
    let mut body = String::new();
    conn.read_to_string(&mut body).unwrap();
    body
}
