//! Cache warming: ask the CPU to start loading memory the engine will touch a little later.
//!
//! At 500,000 waiting interactions the engine's state is hundreds of megabytes, so a record it
//! has not touched for a while comes from memory (≈ 100 ns a cache line). When the engine knows
//! early which record it will need, a prefetch lets that load run while it does other work,
//! instead of stalling on it when the record is read. A prefetch is only a hint: it changes no
//! state and no result, so the engine stays deterministic whether or not the hardware acts on it.

/// Start loading the record behind an `Arc` and its reference counts (which sit in front of it).
#[inline(always)]
pub(super) fn prefetch_arc<T>(value: &std::sync::Arc<T>) {
    let record = std::sync::Arc::as_ptr(value).cast::<u8>();
    prefetch_range(
        record.wrapping_sub(ARC_COUNTS),
        record.wrapping_add(std::mem::size_of::<T>()),
    );
}

/// Start loading a shared string's counts and its first bytes (one cache line).
#[inline(always)]
pub(super) fn prefetch_arc_str(value: &std::sync::Arc<str>) {
    prefetch_line(
        std::sync::Arc::as_ptr(value)
            .cast::<u8>()
            .wrapping_sub(ARC_COUNTS),
    );
}

/// Start loading every cache line of a slice's elements.
#[inline(always)]
pub(super) fn prefetch_slice<T>(items: &[T]) {
    let start = items.as_ptr().cast::<u8>();
    prefetch_range(start, start.wrapping_add(std::mem::size_of_val(items)));
}

/// The strong and weak counts in front of an `Arc`'s value.
const ARC_COUNTS: usize = 2 * std::mem::size_of::<usize>();

/// Every cache line overlapping `[start, end)`.
#[inline(always)]
fn prefetch_range(start: *const u8, end: *const u8) {
    let mut line = start.wrapping_sub(start as usize % 64);
    while line < end {
        prefetch_line(line);
        line = line.wrapping_add(64);
    }
}

#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn prefetch_line(p: *const u8) {
    use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
    // SAFETY: PREFETCHT0 is a hint. It never faults, whatever the address (an unmapped one is
    // ignored), and it changes nothing the program can observe. `sse` is part of the x86_64
    // baseline, so the instruction always exists.
    unsafe { _mm_prefetch::<_MM_HINT_T0>(p.cast::<i8>()) }
}

#[cfg(not(target_arch = "x86_64"))]
#[inline(always)]
fn prefetch_line(_p: *const u8) {}
