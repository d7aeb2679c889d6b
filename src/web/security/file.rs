//! The web configuration file as written: its YAML schema, the messages for unknown keys and
//! YAML errors, and the checks of `basic_auth_users` and `http_server_config.headers`.

use std::collections::BTreeMap;
use std::fmt;

use hyper::header::{HeaderName, HeaderValue};
use serde::Deserialize;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct FileConfig {
    #[serde(default)]
    pub(super) tls_server_config: Option<TlsFile>,
    #[serde(default)]
    pub(super) http_server_config: Option<HttpFile>,
    #[serde(default)]
    pub(super) rate_limit: Option<RateLimitFile>,
    #[serde(default)]
    pub(super) basic_auth_users: Option<BTreeMap<String, String>>,
}

#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct TlsFile {
    pub(super) cert: Option<String>,
    pub(super) key: Option<String>,
    pub(super) client_ca: Option<String>,
    pub(super) cert_file: Option<String>,
    pub(super) key_file: Option<String>,
    pub(super) client_auth_type: Option<String>,
    pub(super) client_ca_file: Option<String>,
    pub(super) client_allowed_sans: Option<Vec<String>>,
    pub(super) min_version: Option<String>,
    pub(super) max_version: Option<String>,
    pub(super) cipher_suites: Option<Vec<String>>,
    pub(super) curve_preferences: Option<Vec<String>>,
    pub(super) prefer_server_cipher_suites: Option<bool>,
}

impl fmt::Debug for TlsFile {
    // `key` may hold a private key inline: never print it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsFile")
            .field("cert_file", &self.cert_file)
            .field("key_file", &self.key_file)
            .field("key", &self.key.as_ref().map(|_| "<secret>"))
            .field("client_auth_type", &self.client_auth_type)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct HttpFile {
    pub(super) http2: Option<bool>,
    pub(super) headers: Option<BTreeMap<String, String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RateLimitFile {
    pub(super) interval: Option<DurationValue>,
    pub(super) burst: Option<i64>,
}

/// A Go duration: "30s", "1m", or nanoseconds as a number.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub(super) enum DurationValue {
    Nanos(i64),
    Text(String),
}

const HEADER_RULES: &[(&str, &[&str])] = &[
    ("Strict-Transport-Security", &[]),
    ("X-Content-Type-Options", &["nosniff"]),
    ("X-Frame-Options", &["deny", "sameorigin"]),
    ("X-XSS-Protection", &[]),
    ("Content-Security-Policy", &[]),
];
// ---------------------------------------------------------------------------------------------
// Parsing and validation
// ---------------------------------------------------------------------------------------------

/// The file's sections and their keys, for unknown-key messages.
const SECTIONS: &[(&str, &[&str])] = &[
    (
        "",
        &[
            "tls_server_config",
            "http_server_config",
            "rate_limit",
            "basic_auth_users",
        ],
    ),
    (
        "tls_server_config",
        &[
            "cert",
            "key",
            "client_ca",
            "cert_file",
            "key_file",
            "client_auth_type",
            "client_ca_file",
            "client_allowed_sans",
            "min_version",
            "max_version",
            "cipher_suites",
            "curve_preferences",
            "prefer_server_cipher_suites",
        ],
    ),
    ("http_server_config", &["http2", "headers"]),
    ("rate_limit", &["interval", "burst"]),
];

/// A file that is not valid YAML for this schema: the offending key when serde names one.
pub(super) struct ParseFailure {
    pub(super) key: Option<String>,
    pub(super) message: String,
}

pub(super) fn parse_yaml(text: &str) -> Result<FileConfig, ParseFailure> {
    let mut options = serde_saphyr::Options::default();
    // The snippet would echo file lines (maybe an inline private key) into logs.
    options.with_snippet = false;
    match serde_saphyr::from_str_with_options::<Option<FileConfig>>(text, options) {
        Ok(c) => Ok(c.unwrap_or_default()),
        Err(e) => {
            let message = e.to_string();
            Err(explain_unknown_key(&message).unwrap_or_else(|| ParseFailure {
                key: None,
                message: match message.strip_prefix("duplicate mapping key: ") {
                    Some(rest) => {
                        let (key, place) = rest.split_once(", set DuplicateKeyPolicy").unwrap_or((rest, ""));
                        let place = place.find(" at line ").map(|i| &place[i + 1..]).unwrap_or("");
                        format!("duplicate key `{key}` {place}; keep only one")
                    }
                    None => format!("{message}; fix the YAML there (exporter-toolkit web configuration format)"),
                },
            }))
        }
    }
}

/// Turns serde's "unknown field `x`, expected one of … at line L, column C" into the section,
/// the key, a suggestion and the keys allowed there.
fn explain_unknown_key(message: &str) -> Option<ParseFailure> {
    const MARK: &str = "unknown field `";
    let rest = &message[message.find(MARK)? + MARK.len()..];
    let unknown = &rest[..rest.find('`')?];
    let expected = &rest[rest.find("expected")?..];
    let (expected, location) = match expected.find(" at line ") {
        Some(at) => (&expected[..at], Some(expected[at + 4..].trim())),
        None => (expected, None),
    };
    let (section, keys) = SECTIONS.iter().rev().find(|(_, keys)| {
        expected
            .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .any(|w| keys.first() == Some(&w))
    })?;
    let hint = keys
        .iter()
        .map(|k| (strsim::levenshtein(unknown, k), *k))
        .filter(|(d, k)| *d <= 2.max(k.len() / 4))
        .min_by_key(|(d, _)| *d)
        .map_or("remove it or".to_owned(), |(_, k)| {
            format!("did you mean `{k}`? Otherwise")
        });
    let place = location.map(|l| format!(" ({l})")).unwrap_or_default();
    let key = if section.is_empty() {
        unknown.to_owned()
    } else {
        format!("{section}.{unknown}")
    };
    let where_ = if section.is_empty() {
        "at the top level".to_owned()
    } else {
        format!("in {section}")
    };
    Some(ParseFailure {
        key: Some(key),
        message: format!(
            "unknown key{place}; {hint} use one of the exporter-toolkit keys allowed {where_}: {}",
            keys.join(", ")
        ),
    })
}

pub(super) fn validate_users(users: BTreeMap<String, String>) -> Result<Vec<(String, String)>, (String, String)> {
    let mut out = Vec::with_capacity(users.len());
    for (user, hash) in users {
        let key = format!("basic_auth_users.{user}");
        if user.is_empty() {
            return Err((
                "basic_auth_users".into(),
                "a user name is empty; give every user a name".into(),
            ));
        }
        if user.contains(':') {
            return Err((
                key,
                "a user name cannot contain ':' (HTTP Basic splits there); rename the user".into(),
            ));
        }
        check_bcrypt_hash(&hash).map_err(|m| {
            (
                key,
                format!("{m}; put a bcrypt hash there, e.g. the output of htpasswd -nBC 10 \"\" | tr -d ':\\n'"),
            )
        })?;
        out.push((user, hash));
    }
    Ok(out)
}

/// `$2a$`/`$2b$`/`$2y$`, a two-digit cost 4–31, 22 salt and 31 hash characters. Describes the
/// problem without repeating the hash.
fn check_bcrypt_hash(hash: &str) -> Result<(), String> {
    let b = hash.as_bytes();
    if !(b.len() == 60 && b[0] == b'$' && b[3] == b'$' && b[6] == b'$') {
        return Err(format!(
            "not a bcrypt hash (expected 60 characters like $2y$10$…, found {} characters)",
            hash.chars().count()
        ));
    }
    if !matches!(&hash[1..3], "2a" | "2b" | "2y") {
        return Err("unsupported bcrypt version (expected $2a$, $2b$ or $2y$)".into());
    }
    match hash[4..6].parse::<u32>() {
        Ok(c) if (4..=31).contains(&c) => {}
        _ => return Err("bcrypt cost must be two digits between 04 and 31".into()),
    }
    if !hash[7..]
        .bytes()
        .all(|c| c == b'.' || c == b'/' || c.is_ascii_alphanumeric())
    {
        return Err("the salt and hash part holds characters outside bcrypt's alphabet".into());
    }
    if hash.parse::<bcrypt::HashParts>().is_err() {
        return Err("the salt or hash part is not valid bcrypt base64".into());
    }
    Ok(())
}

pub(super) fn validate_headers(
    headers: BTreeMap<String, String>,
) -> Result<Vec<(HeaderName, HeaderValue)>, (String, String)> {
    let allowed: Vec<&str> = HEADER_RULES.iter().map(|(n, _)| *n).collect();
    let mut out = Vec::new();
    for (name, value) in headers {
        let key = format!("http_server_config.headers.{name}");
        let Some((_, values)) = HEADER_RULES.iter().find(|(n, _)| *n == name) else {
            return Err((
                key,
                format!("this header cannot be configured; use one of {}", allowed.join(", ")),
            ));
        };
        if !values.is_empty() && !values.contains(&value.as_str()) {
            return Err((
                key,
                format!("invalid value {value:?}; use one of {}", values.join(", ")),
            ));
        }
        if value.is_empty() {
            continue; // "unset if blank"
        }
        let name = HeaderName::from_bytes(name.as_bytes()).map_err(|_| {
            (
                key.clone(),
                "not a valid header name; use one of the listed headers".to_owned(),
            )
        })?;
        let value = HeaderValue::from_str(&value).map_err(|_| {
            (
                key,
                "the value holds characters not allowed in an HTTP header; remove them".to_owned(),
            )
        })?;
        out.push((name, value));
    }
    Ok(out)
}
