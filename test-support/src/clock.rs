//! Wall-clock time as the store and the controller report it.

/// Seconds since the epoch (the store's object times have this precision).
pub fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}
