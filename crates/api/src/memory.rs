//! Gives heap memory freed after a burst back to the operating system.
//!
//! Why: glibc keeps freed heap memory mapped for reuse. A burst of short-lived allocations (a
//! thousand dashboards reconnecting at once, each handshake checking its session) leaves
//! megabytes of free chunks interleaved with the long-lived state of the connections that stay
//! open, so the process's resident size stays at the burst's peak for as long as those
//! connections live. Once a second a thread checks how much free memory the allocator holds and,
//! when that grew by [`TRIM_STEP`] since its last low or the last trim, calls `malloc_trim`, which releases the
//! free pages. An idle server costs one `mallinfo2` per second; other platforms and allocators
//! get no thread.

/// Growth of free-but-held heap memory that triggers a trim. Small enough that resident memory
/// stays within a few MiB of what is in use (a 10-minute soak at steady load drifted by up to
/// this much between trims at 8 MiB), large enough that a server under steady load trims
/// seldom: each trim makes the next allocations of those pages fault them back in.
pub const TRIM_STEP: usize = 2 << 20;

/// Starts the trim thread once per process (later calls do nothing).
pub fn start_trimmer() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        static STARTED: std::sync::Once = std::sync::Once::new();
        STARTED.call_once(|| {
            let spawned = std::thread::Builder::new()
                .name("keysync-heap-trim".into())
                .spawn(glibc::run);
            if let Err(err) = spawned {
                tracing::warn!(error = %err, "cannot start the heap trim thread");
            }
        });
    }
}

/// Heap bytes the allocator has handed out and not got back (glibc only; `None` elsewhere).
pub fn heap_in_use() -> Option<usize> {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // SAFETY: mallinfo2 only reads the allocator's statistics under its own locks.
        let info = unsafe { libc::mallinfo2() };
        Some(info.uordblks.saturating_add(info.hblkhd))
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    {
        None
    }
}

/// Bytes SQLite has allocated in this process (page caches, prepared statements, schema), for
/// every connection together.
pub fn sqlite_heap() -> i64 {
    // SAFETY: sqlite3_memory_used reads a counter SQLite keeps under its own mutex.
    unsafe { libsqlite3_sys::sqlite3_memory_used() }
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
mod glibc {
    use std::time::Duration;

    use super::TRIM_STEP;

    /// Free bytes the allocator holds in its arenas.
    fn held_free() -> usize {
        // SAFETY: mallinfo2 only reads the allocator's statistics under its own locks.
        unsafe { libc::mallinfo2() }.fordblks
    }

    pub fn run() {
        // Once after start-up (migrations, the first sign-in): what it freed need not stay
        // resident, and later growth is then measured from a lean heap.
        std::thread::sleep(Duration::from_secs(2));
        // SAFETY: as below.
        unsafe { libc::malloc_trim(0) };
        let mut last = held_free();
        loop {
            std::thread::sleep(Duration::from_secs(1));
            let free = held_free();
            if free >= last.saturating_add(TRIM_STEP) {
                // SAFETY: malloc_trim is thread-safe; 0 keeps no extra padding at the heap top.
                unsafe { libc::malloc_trim(0) };
                tracing::debug!(free_bytes = free, "returned freed heap memory to the OS");
                // Trimmed chunks still count as free; what matters is growth from here on.
                last = free;
            } else if free < last {
                // Reused: growth counts from the new low, so a slow build-up also triggers.
                last = free;
            }
        }
    }
}
