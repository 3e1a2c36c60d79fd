//! Loopback ports for servers a test starts.

use std::net::TcpListener;

/// A free TCP port on 127.0.0.1 (free when asked; a test binds it soon).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}
