//! `[vantage]`: the name of the place this instance probes from ("vnpt-hanoi"). It is logged,
//! exported (`diemcau_vantage_info`), written with every run of the ledger and shown on the
//! status page, so records and alerts from several instances can be told apart.

use super::toml_file::RawVantage;
use super::{Validator, position};

/// Longest vantage name.
const MAX_LEN: usize = 63;

/// Whether `name` can be a vantage name: 1–63 ASCII letters, digits, `.`, `_` or `-`, starting
/// with a letter or digit (it goes into label values, file names and URLs as it is).
pub fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && name.len() <= MAX_LEN
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
}

/// The name used when the config gives none: the host name when it is a valid one (a pod's
/// name under Kubernetes), else `local`.
pub fn default_name() -> String {
    host_name()
        .filter(|h| valid_name(h))
        .unwrap_or_else(|| "local".to_string())
}

/// This machine's host name (a pod's name under Kubernetes).
pub fn host_name() -> Option<String> {
    let mut buf = [0u8; 256];
    // SAFETY: gethostname writes at most buf.len() bytes into buf.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if rc != 0 {
        return None;
    }
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    std::str::from_utf8(&buf[..end]).ok().map(str::to_string)
}

impl Validator<'_> {
    pub(super) fn vantage(&mut self, raw: &RawVantage) -> String {
        let Some(name) = &raw.name else {
            return default_name();
        };
        if valid_name(name.get_ref()) {
            return name.get_ref().clone();
        }
        let (l, c) = position(self.text, name);
        let shown: String = name.get_ref().chars().take(80).collect();
        self.problem_at(
            l,
            c,
            "vantage.name",
            &format!("{shown:?} is not a vantage name"),
            "use 1 to 63 letters, digits, '.', '_' or '-', starting with a letter or digit, e.g. \"vnpt-hanoi\"",
        );
        default_name()
    }

    /// `[vantage] quorum`: `"all"` (the default: every vantage watching must see Down) or how
    /// many of them must.
    pub(super) fn quorum(&mut self, raw: &RawVantage) -> crate::domain::merge::Quorum {
        use crate::domain::merge::Quorum;
        let Some(q) = &raw.quorum else {
            return Quorum::All;
        };
        match q.get_ref() {
            toml::Value::String(s) if s == "all" => Quorum::All,
            toml::Value::Integer(k) if (1..=1024).contains(k) => Quorum::AtLeast(*k as u32),
            other => {
                let (l, c) = position(self.text, q);
                self.problem_at(
                    l,
                    c,
                    "vantage.quorum",
                    &format!("{other} is neither \"all\" nor a count of vantages from 1 to 1024"),
                    "write quorum = \"all\" (every vantage watching must see it Down) or e.g. quorum = 2",
                );
                Quorum::All
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_short_plain_and_start_with_a_letter_or_digit() {
        for ok in ["vnpt-hanoi", "viettel.hcm_2", "a", "0", &"x".repeat(63)] {
            assert!(valid_name(ok), "{ok}");
        }
        for bad in ["", "-vnpt", ".x", "vnpt hanoi", "hà-nội", "a/b", "a\0", &"x".repeat(64)] {
            assert!(!valid_name(bad), "{bad:?}");
        }
        assert!(valid_name(&default_name()));
    }
}
