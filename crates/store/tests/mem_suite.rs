//! The engine conformance suite on [`MemEngine`]. A clone of the handle is
//! the same store, so calling the opener again "reopens" it.

use jetraft_store::mem::MemEngine;

jetraft_store::engine_suite!({
    let store = MemEngine::new();
    move || store.clone()
});

/// The same suite on the volatile engine of `storage: "memory"` streams
/// (reopening is the same process: a clone of the handle).
mod volatile {
    use jetraft_store::mem::MemEngine;

    jetraft_store::engine_suite!({
        let store = MemEngine::volatile();
        move || store.clone()
    });
}
