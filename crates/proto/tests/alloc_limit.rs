//! A frame over the limit is refused before anything is allocated for it:
//! this binary counts the largest allocation to prove it.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use proto::frame::FLAG_LZ4;
use proto::{FrameDecoder, NodeMessage};

struct Counting;

static LARGEST: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LARGEST.fetch_max(layout.size(), Ordering::Relaxed);
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LARGEST.fetch_max(new_size, Ordering::Relaxed);
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

#[test]
fn huge_announced_lengths_allocate_nothing_big() {
    let mut dec = FrameDecoder::<NodeMessage>::default(); // 1 MiB limit
    LARGEST.store(0, Ordering::Relaxed);

    // A header announcing 4 GiB.
    dec.push(&[0xff, 0xff, 0xff, 0xff, 0x00]);
    assert!(dec.next().expect_err("oversize").is_fatal());

    // A small LZ4 frame claiming to inflate to 4 GiB.
    let mut dec = FrameDecoder::<NodeMessage>::default();
    dec.push(&[0, 0, 0, 6, FLAG_LZ4, 0xff, 0xff, 0xff, 0xff, 0, 0]);
    assert!(dec.next().is_err());

    let largest = LARGEST.load(Ordering::Relaxed);
    assert!(largest < 64 * 1024, "largest allocation {largest} bytes");
}
