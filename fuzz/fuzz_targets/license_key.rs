#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| keysync_api::fuzzing::license_key(data));
