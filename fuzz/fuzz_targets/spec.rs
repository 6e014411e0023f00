//! OpenAPI text (YAML or JSON) through loading, references, validation and the contract rules.
#![no_main]
use libfuzzer_sys::fuzz_target;
use racecheck::spec::{check, SpecInput};

fuzz_target!(|data: &[u8]| {
    let Ok(content) = std::str::from_utf8(data) else {
        return;
    };
    let report = check(&SpecInput::Inline {
        content: content.into(),
        base_dir: None,
    });
    assert!(
        report.errors.iter().all(|e| !e.message.contains("internal error")),
        "{:?}",
        report.errors
    );
});
