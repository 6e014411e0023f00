//! Probe plans (JSON or YAML) through the same reading and every safety check before a probe
//! would send anything.
#![no_main]
use libfuzzer_sys::fuzz_target;
use racecheck::probe::plan::Plan;
use racecheck::probe::safety::{self, Policy};
use racecheck::spec::doc::Doc;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(doc) = Doc::parse("plan.yaml".into(), text) else {
        return;
    };
    let Ok(plan) = serde_json::from_value::<Plan>(doc.value) else {
        return;
    };
    let _ = safety::Limits::of(&plan);
    let text_ok = safety::request_text(&plan).is_ok();
    if let Ok(ep) = safety::endpoint(&plan.target.url, &Policy::default()) {
        // Whatever the plan says, an endpoint without an operator's allowance is loopback.
        if let Some(addr) = ep.addr {
            assert!(addr.ip().is_loopback(), "{addr}");
        }
        if text_ok {
            let _ = racecheck::probe::request_bytes(&plan, &Policy::default());
        }
    }
});
