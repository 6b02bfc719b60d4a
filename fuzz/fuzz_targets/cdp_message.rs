//! Arbitrary bytes as one websocket text message from an inspector, into
//! the CDP decoder the session's reader uses. Whatever comes must decode
//! or give a one-line reason; a panic, abort or runaway allocation is a bug.
#![no_main]

use inspector::session::{decode, Decoded};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // The reader decodes binary frames lossily the same way.
    let text = String::from_utf8_lossy(data);
    match decode(&text) {
        Ok(Decoded::Reply { result: Ok(raw), .. }) => {
            // Callers parse the result again into their types: that may
            // fail (a number out of f64's range is valid JSON, and a raw
            // value, but no Value), and must fail as an error.
            let _ = serde_json::from_str::<serde_json::Value>(raw.get());
        }
        Ok(Decoded::Reply { result: Err((_, message)), .. }) => {
            let _ = message.len();
        }
        Ok(Decoded::Event(ev)) => {
            let _ = ev.method.len();
        }
        Err(why) => {
            assert!(!why.contains('\n'), "a multi-line reason: {why:?}");
        }
    }
});
