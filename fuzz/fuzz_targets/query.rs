//! Bytes in, a response or a drop out, never a panic; and wherever the
//! fast path answers, the general path answers the same bytes.
#![no_main]

use globaldns::fuzzing::{check_query, zones};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    check_query(zones(), data);
});
