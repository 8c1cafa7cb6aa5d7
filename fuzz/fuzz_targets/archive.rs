//! Archive reading: manifest, entry checks and extraction of any bytes,
//! never a panic, never a file outside the destination.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let limits = fm::archive::Limits::default();
    let _ = fm::archive::read_manifest(data);
    if fm::archive::check_entries(data, &limits).is_ok() {
        let dir = tempfile::tempdir().expect("tempdir");
        let dest = dir.path().join("out");
        std::fs::create_dir(&dest).expect("mkdir");
        let _ = fm::archive::extract(std::io::Cursor::new(data), &dest, &limits);
    }
});
