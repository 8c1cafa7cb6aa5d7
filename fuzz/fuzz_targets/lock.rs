//! fm.lock parsing (conflict markers included): any bytes, never a panic;
//! what parses renders and parses back to the same lock.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let path = std::path::Path::new("/fuzz/fm.lock");
        if let Ok(lock) = fm::lock::Lockfile::parse(path, text) {
            let again = fm::lock::Lockfile::parse(path, &lock.render()).expect("a rendered lock parses");
            assert_eq!(again.render(), lock.render());
        }
    }
});
