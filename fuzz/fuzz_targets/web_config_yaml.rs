//! The exporter-toolkit web configuration file (`--web.config.file`): YAML schema, unknown-key
//! messages, users and bcrypt hash syntax, headers, and TLS settings with inline PEM. The
//! pseudo path's directory does not exist, so relative `*_file` keys fail to read.
#![no_main]

use std::path::Path;

use diemcau::web::security::{WebConfigError, WebSecurity};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let path = Path::new("/nonexistent-diemcau-fuzz/web.yml");
    match WebSecurity::from_text(text, path) {
        Ok(security) => {
            assert!(!security.summary().is_empty());
            for (name, value) in security.response_headers() {
                assert!(!name.as_str().is_empty());
                assert!(!value.is_empty());
            }
        }
        Err(e) => {
            let message = e.to_string();
            assert!(
                message.starts_with("web config /nonexistent-diemcau-fuzz/web.yml"),
                "{message}"
            );
            assert!(
                !matches!(e, WebConfigError::Read { .. }),
                "the text was given, not read"
            );
        }
    }
});
