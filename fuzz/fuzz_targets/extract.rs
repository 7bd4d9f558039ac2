//! Both extractors over arbitrary text: an error is fine, a panic or a hang is not.
#![no_main]

use libfuzzer_sys::fuzz_target;
use p0_core::extract::{MySqlExtractor, PostgresExtractor};
use p0_core::PermissionExtractor;

fuzz_target!(|data: &[u8]| {
    if let Ok(sql) = std::str::from_utf8(data) {
        let _ = PostgresExtractor::new().with_columns(data.len() % 2 == 0).extract(sql);
        let _ = MySqlExtractor::new(Some("db".into())).extract(sql);
    }
});
