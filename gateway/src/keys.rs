//! The shapes of object keys the gateway knows: what it stores at all,
//! which agency a key belongs to, and the few records whose writer may
//! delete them under the floor.

use s3s::{S3Result, s3_error};

/// Refuses a key the gateway does not store: the engine's keys are short
/// printable ASCII paths.
pub fn check_key(key: &str) -> S3Result<()> {
    // Only what the engine's keys use: no byte the upstream store would
    // encode (a directory upstream names `~` as `%7E`).
    let ok = !key.is_empty()
        && key.len() <= 1024
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'/' | b'='))
        && key
            .split('/')
            .all(|seg| !seg.is_empty() && seg != "." && seg != "..");
    if ok {
        Ok(())
    } else {
        Err(s3_error!(
            InvalidArgument,
            "object key `{}` is not one the gateway stores (letters, digits and `-_.=` in `/`-separated segments, no `.`/`..`, at most 1024 bytes)",
            key.escape_debug()
        ))
    }
}

/// An object key of the bucket as (agency, key within the agency).
pub fn split_key(key: &str) -> Option<(&str, &str)> {
    key.split_once('/')
        .filter(|(a, k)| !a.is_empty() && !k.is_empty())
}

/// Whether `key` (within an agency) is one of `pulih benchmark`'s scratch
/// objects, `[REPO/]benchmark/RUN/NAME`, which the engine never reads: an
/// agent may delete those it wrote itself. Never a name of the engine's
/// own directories (a repository whose prefix ends in `benchmark`).
pub fn is_scratch(key: &str) -> bool {
    let s: Vec<&str> = key.split('/').collect();
    let n = s.len();
    n >= 3
        && s[n - 3] == "benchmark"
        && !matches!(
            s[n - 2],
            "data" | "index" | "snapshots" | "keys" | "locks" | "holds" | "bindings" | "reports"
        )
}

/// Whether `key` (within an agency, after its repository's prefix) is one
/// of the records the maintenance credential writes and deletes itself
/// within days — prune's lock records (`locks/…`), anomaly holds
/// (`holds/…`): exempt from the floor when, and only when, the
/// maintenance credential wrote them.
pub fn maintenance_record(key: &str) -> bool {
    let s: Vec<&str> = key.split('/').collect();
    s.len() >= 2 && matches!(s[s.len() - 2], "locks" | "holds")
}

#[cfg(test)]
mod tests {
    use super::is_scratch;

    #[test]
    fn maintenance_records_are_the_last_two_segments() {
        use super::maintenance_record;
        assert!(maintenance_record("repo/locks/prune-ab"));
        assert!(maintenance_record("locks/moves-ab"));
        assert!(maintenance_record("a/b/holds/cd"));
        assert!(!maintenance_record("repo/snapshots/ab"));
        assert!(!maintenance_record("repo/locks/x/y"));
        assert!(!maintenance_record("locks"));
    }

    #[test]
    fn only_benchmark_scratch_is_scratch() {
        assert!(is_scratch("benchmark/run1/obj-1"));
        assert!(is_scratch("repo/benchmark/run1/obj-1"));
        for not in [
            "repo/data/ab/cd",
            "benchmark/run1",
            "benchmark/x/y/z",
            "repo/benchmark/index/abc",
            "repo/benchmark/snapshots/abc",
            "config",
        ] {
            assert!(!is_scratch(not), "{not}");
        }
    }
}
