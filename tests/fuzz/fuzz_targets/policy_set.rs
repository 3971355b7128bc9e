//! libFuzzer's entry point for [`capstan_fuzz::policy_set`].
#![no_main]

libfuzzer_sys::fuzz_target!(|bytes: &[u8]| capstan_fuzz::policy_set(bytes));
