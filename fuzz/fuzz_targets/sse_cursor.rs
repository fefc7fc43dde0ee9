#![no_main]
// The body is shared with the stable replay test: see `abstractgateway::fuzzing`.
libfuzzer_sys::fuzz_target!(|data: &[u8]| abstractgateway::fuzzing::sse_cursor(data));
