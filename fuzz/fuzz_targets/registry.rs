//! Any text given as a registry is accepted or refused with problems,
//! never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        globaldns::fuzzing::check_registry(text);
    }
});
