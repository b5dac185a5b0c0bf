//! Random policy files: the parser returns a policy or an error with a line, never panics.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: &[u8]| {
    let Ok(text) = std::str::from_utf8(input) else {
        return;
    };
    if let Err(e) = valet_policy::Policy::from_toml(text) {
        assert!(
            e.line <= text.lines().count() + 1,
            "line {} out of range",
            e.line
        );
    }
});
