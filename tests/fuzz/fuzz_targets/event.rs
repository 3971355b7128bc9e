//! libFuzzer's entry point for [`capstan_fuzz::event`].
#![no_main]

libfuzzer_sys::fuzz_target!(|bytes: &[u8]| capstan_fuzz::event(bytes));
