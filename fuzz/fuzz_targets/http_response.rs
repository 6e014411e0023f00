//! Arbitrary bytes as the answer to a burst request.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    let mut bytes = data;
    let _ = rt.block_on(racecheck::probe::burst::read_inner(&mut bytes));
});
