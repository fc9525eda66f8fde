//! The process's allocator: small blocks from mimalloc, the rest from the system's malloc.
//!
//! Why two. Most of the server's allocations are small and short-lived (a command line, a
//! header field, a feature of the spam classifier, a trace event): mimalloc's per-thread free
//! lists serve them for less CPU than glibc's arenas. Relaying through an on-premises
//! connector (`ONLY=hato bash bench/relay.sh`, the server's CPU time per message, three
//! alternating pairs on a loaded machine) took 1.48 ms with mimalloc for everything against
//! 1.60 ms with glibc, about 8 % less. But a message's buffers are large (up to the size
//! limit, 35 MB by default), and mimalloc keeps freed pages for reuse: with 200 sessions each
//! sending a 30 MB message (`bench/memory.sh`) the peak RSS was 520 MB with mimalloc for
//! everything against 248 MB with glibc alone (whose mmap threshold `main` fixes at 128 KiB,
//! so a large block goes back to the system when freed); 336 MB with blocks of 64 KiB and
//! more from glibc, 298 MB when mimalloc also purged freed memory at once. So only blocks
//! under [`LARGE`] come from mimalloc, which purges freed memory at once
//! ([`purge_freed_memory_at_once`], called first thing in `main`).
//!
//! Rust hands `dealloc` and `realloc` the layout the block was allocated with
//! (`GlobalAlloc`'s safety contract), so the size alone says which allocator owns a block;
//! a `realloc` that crosses the line moves the block to the other allocator.

use mimalloc::MiMalloc;
use std::alloc::{GlobalAlloc, Layout, System};

/// Blocks of this many bytes or more come from the system allocator. Above glibc's fixed mmap
/// threshold (128 KiB) these are mmapped and unmapped on free; below it they come from glibc's
/// arenas, as before this split. The blocks the hot paths allocate per message are mostly far
/// smaller (strings, small vectors, trace events).
pub const LARGE: usize = 4 * 1024;

/// mimalloc's `mi_option_purge_delay` (the C enum's value, `mimalloc.h`; the Rust bindings
/// name the options around it: `mi_option_eager_commit_delay` = 14, `mi_option_use_numa_nodes`
/// = 16). A test checks its default (1000 ms in the mimalloc 3 this crate builds, `options.c`)
/// so a different numbering shows.
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// Freed memory goes back to the system at once instead of after mimalloc's default delay of
/// a second (`mimalloc.h`: "use 0 for immediate purging"), so many sessions' freed buffers do not
/// add up in the peak RSS.
pub fn purge_freed_memory_at_once() {
    // SAFETY: sets an option value; mimalloc reads it when it next decides to purge.
    unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, 0) }
}

pub struct SplitAllocator;

// SAFETY: each block is allocated, reallocated and freed by the allocator its size selects
// (`layout.size() >= LARGE`); both allocators uphold `GlobalAlloc`'s contract, and a realloc
// across the line allocates a new block of the new layout, copies the bytes both sizes hold,
// and frees the old block with the allocator that made it.
unsafe impl GlobalAlloc for SplitAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's guarantees (non-zero size) pass through unchanged.
        unsafe {
            if layout.size() >= LARGE {
                System.alloc(layout)
            } else {
                MiMalloc.alloc(layout)
            }
        }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: as in `alloc`.
        unsafe {
            if layout.size() >= LARGE {
                System.alloc_zeroed(layout)
            } else {
                MiMalloc.alloc_zeroed(layout)
            }
        }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `layout` is the one `ptr` was allocated with, so its size names the
        // allocator that made it.
        unsafe {
            if layout.size() >= LARGE {
                System.dealloc(ptr, layout)
            } else {
                MiMalloc.dealloc(ptr, layout)
            }
        }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let was_large = layout.size() >= LARGE;
        let is_large = new_size >= LARGE;
        // SAFETY: same side: that allocator's own realloc, under the caller's guarantees.
        // Across: the new layout is valid (the caller guarantees `new_size` rounded up to the
        // alignment does not overflow isize), the copy covers bytes both blocks hold, and the
        // old block is freed by its own allocator only after the copy.
        unsafe {
            match (was_large, is_large) {
                (true, true) => System.realloc(ptr, layout, new_size),
                (false, false) => MiMalloc.realloc(ptr, layout, new_size),
                _ => {
                    let new_layout = Layout::from_size_align_unchecked(new_size, layout.align());
                    let new = self.alloc(new_layout);
                    if !new.is_null() {
                        std::ptr::copy_nonoverlapping(ptr, new, layout.size().min(new_size));
                        self.dealloc(ptr, layout);
                    }
                    new
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    /// The option number is mimalloc's purge delay: its default is 1000 (ms).
    #[test]
    fn the_purge_delay_option_is_the_one_numbered() {
        // SAFETY: reads an option value.
        let delay = unsafe { libmimalloc_sys::mi_option_get(super::MI_OPTION_PURGE_DELAY) };
        assert_eq!(delay, 1000, "option 15 is not the purge delay");
        // SAFETY: as above.
        let numa =
            unsafe { libmimalloc_sys::mi_option_get(libmimalloc_sys::mi_option_use_numa_nodes) };
        assert_eq!(numa, 0);
    }

    /// Growing a buffer across the line and shrinking it back keeps its bytes (the realloc
    /// that moves a block between the two allocators).
    #[test]
    fn a_buffer_keeps_its_bytes_across_the_line_both_ways() {
        let mut v: Vec<u8> = (0..1000u32).map(|i| (i % 251) as u8).collect();
        v.reserve_exact(super::LARGE * 2);
        v.extend((0..super::LARGE as u32 * 2).map(|i| (i % 241) as u8));
        assert!(v.capacity() >= super::LARGE);
        v.truncate(1000);
        v.shrink_to_fit();
        assert!(v.capacity() < super::LARGE);
        assert!(v.iter().enumerate().all(|(i, b)| *b == (i % 251) as u8));
    }

    /// Zeroed blocks on both sides are zero.
    #[test]
    fn zeroed_blocks_are_zero_on_both_sides() {
        for size in [16, super::LARGE - 1, super::LARGE, super::LARGE * 3] {
            let v = vec![0u8; size];
            assert!(v.iter().all(|b| *b == 0), "{size}");
        }
    }
}
