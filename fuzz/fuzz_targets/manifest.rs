//! fm.toml parsing and validation: any bytes, never a panic.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = fm::manifest::Manifest::parse(std::path::Path::new("/fuzz/fm.toml"), text);
    }
});
