//! Rust source through the whole analysis: parse, index, walk, rules, fixes.
#![no_main]
use libfuzzer_sys::fuzz_target;
use racecheck::source::{analyze, Input, Options};

fuzz_target!(|data: &[u8]| {
    let Ok(code) = std::str::from_utf8(data) else {
        return;
    };
    let input = Input::Inline {
        name: "fuzz.rs".into(),
        code: code.into(),
    };
    let options = Options {
        threads: Some(1),
        ..Options::default()
    };
    let report = analyze(&[input], &options);
    // Internal errors are bugs: they must not happen on any input.
    assert!(
        report.errors.iter().all(|e| !e.message.contains("internal error")),
        "{:?}",
        report.errors
    );
});
