//! glibc's allocator gives every thread that allocates an arena of its own
//! (up to eight per core) and keeps what is freed in that arena for the
//! thread's next allocation, not for the others'. A restore's blocking
//! threads each decrypt and decompress blobs of up to 4 MiB, so each arena
//! keeps several MiB: peak RSS of a restore of the Debian bench tree was
//! 127–155 MiB with glibc's default and 82–89 MiB with two arenas, in the
//! same time within the noise (docs/BENCHMARKS.md, "Peak RSS"). jemalloc
//! and mimalloc (preloaded) were worse than glibc's default.
//!
//! The limit can only be set when the process starts (or by `mallopt`,
//! which needs `unsafe`, forbidden here), so the commands that restore,
//! verify or serve (main's `reads_blobs_or_serves`) start themselves
//! again: the same process (`exec`), the same executable
//! (`/proc/self/exe`, even if the file was replaced since), the same
//! arguments, with `MALLOC_ARENA_MAX` set. A value the caller set is kept
//! as it is; if the new start fails the process goes on with glibc's
//! default.

/// Arenas: two, as measured above; more would only help many threads
/// allocating small objects at once, which Pulih does not.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const ARENAS: &str = "2";

/// Returns only when `MALLOC_ARENA_MAX` is set already or the new start
/// failed; otherwise the process continues as its new self.
pub fn limit_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        use std::os::unix::process::CommandExt;
        if std::env::var_os("MALLOC_ARENA_MAX").is_some() {
            return;
        }
        let mut args = std::env::args_os();
        let mut cmd = std::process::Command::new("/proc/self/exe");
        if let Some(arg0) = args.next() {
            cmd.arg0(arg0);
        }
        // `exec` returns only on failure: go on with glibc's default.
        let _failed = cmd.args(args).env("MALLOC_ARENA_MAX", ARENAS).exec();
    }
}
