//! Requirement parsing: any text, never a panic; the canonical form
//! parses back to itself.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data)
        && let Ok(req) = fm::req::Requirement::parse(text)
    {
        let shown = req.to_string();
        let again = fm::req::Requirement::parse(&shown).expect("a canonical requirement parses");
        assert_eq!(again.to_string(), shown);
    }
});
