//! What a forwarding receiver (possibly hostile or broken) answers: RELP frames, bulk
//! API answers and HEC errors. The readers never panic, keep to their limits, and
//! only name items that were sent.
#![no_main]
use libfuzzer_sys::fuzz_target;
use mamori_forward::sink::{http, relp};

fuzz_target!(|data: &[u8]| {
    let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
    rt.block_on(async {
        let mut r = tokio::io::BufReader::new(data);
        while let Ok(f) = relp::read_frame(&mut r).await {
            assert!(f.data.len() <= relp::MAX_DATA);
            assert!(f.txnr <= 999_999_999);
        }
    });
    let sent = usize::from(data.first().copied().unwrap_or(0)) + 1;
    if let Ok(d) = http::bulk_items(data, sent) {
        assert!(d.retry.iter().chain(d.rejected.iter().map(|(i, _)| i)).all(|i| *i < sent));
    }
    let d = http::hec_invalid(data, sent);
    assert!(d.retry.iter().chain(d.rejected.iter().map(|(i, _)| i)).all(|i| *i < sent));
});
