//! The process's memory allocator, tuned for training.
//!
//! A PPO update at a large minibatch allocates and frees the same large tensors every step
//! (`[4096, 64]` activations and their gradients, 1 MiB each). glibc's `malloc` serves every
//! block above its mmap threshold (128 KiB at start) with a fresh `mmap` and returns it with
//! `munmap`, so each step page-faults and zeroes those pages again, and it trims the heap's top
//! back to the system as soon as it frees. [`tune`] raises both thresholds so freed blocks are
//! reused: on the reference machine (AMD EPYC, 2 cores) a minibatch-4096 PPO update went from
//! 20.6 to 11.7 ms on flex and from 23.9 to 16.8 ms on ndarray, and a PPO iteration of 64 envs ×
//! 256 steps from 353 to 215 ms on flex (`cinder-bench backends`, against the same command with
//! `--default-malloc`).
//!
//! The setting is process-wide, so the library never applies it on its own: the `cinder`
//! command, the examples (through [`crate::cli::train`]) and `cinder-bench` call [`tune`] at
//! start; an application embedding Cinder may call it too. Elsewhere than glibc (musl, macOS,
//! Windows) it does nothing. The same effect is had without code by
//! `GLIBC_TUNABLES=glibc.malloc.mmap_threshold=268435456:glibc.malloc.trim_threshold=1073741824`.

/// Blocks up to this size come from the heap and are reused after `free` (32 MiB, the largest
/// value glibc accepts on 64-bit targets).
pub const MMAP_THRESHOLD: usize = 32 << 20;
/// Free memory at the heap's top kept before it is trimmed back to the system (1 GiB).
pub const TRIM_THRESHOLD: usize = 1 << 30;

/// Tunes the process's allocator for training (see the module docs); returns whether the
/// settings were applied (`false` away from glibc, or if glibc refused them). Idempotent.
pub fn tune() -> bool {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // SAFETY: mallopt only changes allocator parameters, takes no pointers, and returns 0
        // when it refuses a value (glibc accepts an mmap threshold up to HEAP_MAX_SIZE / 2,
        // 32 MiB on 64-bit targets, and any trim threshold).
        unsafe {
            let mmap = libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD as libc::c_int);
            let trim = libc::mallopt(libc::M_TRIM_THRESHOLD, TRIM_THRESHOLD as libc::c_int);
            mmap == 1 && trim == 1
        }
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    {
        false
    }
}
