//! libFuzzer's entry point for [`capstan_fuzz::state_record`].
#![no_main]

libfuzzer_sys::fuzz_target!(|bytes: &[u8]| capstan_fuzz::state_record(bytes));
