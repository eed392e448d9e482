//! A stored blob object, as a backend (a bucket someone else can write) returns it:
//! the reader must refuse anything altered without panicking or allocating unboundedly.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::sync::Arc;

fuzz_target!(|data: &[u8]| {
    let Ok(ring) = mamori_vault::Keyring::parse("t QkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkI=") else { return };
    let rt = tokio::runtime::Builder::new_current_thread().build().expect("runtime");
    rt.block_on(async {
        let src: mamori_vault::ObjectReader = Box::new(std::io::Cursor::new(data.to_vec()));
        if let Ok(mut r) = mamori_vault::BlobReader::from_source(Arc::new(ring), "00".repeat(32), src).await {
            while let Ok(Some(_)) = r.next_chunk().await {}
        }
    });
});
