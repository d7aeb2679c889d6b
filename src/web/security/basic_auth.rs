//! HTTP Basic: decoding the `Authorization` header, checking the password against the bcrypt
//! hash, and the cache of pairs already verified.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::atomic::{AtomicUsize, Ordering};

use hyper::header::HeaderValue;
use subtle::ConstantTimeEq;

use super::{MAX_PASSWORD_BYTES, WebSecurity};

/// Successful (user, password) pairs remembered; the set is emptied when full.
const CACHE_CAPACITY: usize = 1024;

/// Requests waiting for a bcrypt check, at most; more are answered "busy" at once, so a flood
/// of wrong passwords cannot queue a legitimate login behind seconds of hashing.
pub const MAX_WAITING_CHECKS: usize = 8;

/// Failed logins are logged at most once per this interval, with their count.
const FAILURE_LOG_INTERVAL: std::time::Duration = std::time::Duration::from_secs(10);

/// What a request's credentials earn it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Access {
    Granted,
    Denied,
    /// Too many checks are waiting: try again shortly (429).
    Busy,
    /// This client failed too often: try again after this many seconds (429).
    Backoff(u64),
}

impl WebSecurity {
    /// Whether a request with this `Authorization` header may go on (see [`Self::access`]).
    pub async fn authorize(&self, authorization: Option<&HeaderValue>) -> bool {
        self.access(authorization, IpAddr::V4(Ipv4Addr::LOCALHOST)).await == Access::Granted
    }

    /// What a request with this `Authorization` header may do. Always granted when no user is
    /// configured. Every user name is compared (no early exit); an unknown user costs a bcrypt
    /// check like a known one; bcrypt runs in `spawn_blocking`, one at a time, with at most
    /// [`MAX_WAITING_CHECKS`] waiting; correct pairs are remembered (as a keyed SHA-256, in
    /// memory) so the next request is fast. A `peer` that failed too often waits (see
    /// [`super::backoff`]) unless its pair is already remembered as correct, so a scraper
    /// behind the same address as an attacker keeps working.
    pub async fn access(&self, authorization: Option<&HeaderValue>, peer: IpAddr) -> Access {
        if self.users.is_empty() {
            return Access::Granted;
        }
        let Some((user, password)) = authorization.and_then(|v| decode_basic(v.as_bytes())) else {
            return Access::Denied;
        };
        if password.len() > MAX_PASSWORD_BYTES {
            tracing::debug!("Basic credentials refused: password longer than 72 bytes");
            self.failed_login();
            return Access::Denied;
        }
        let mut found: Option<&str> = None;
        for (name, hash) in &self.users {
            let same = ct_eq(name.as_bytes(), &user);
            if same && found.is_none() {
                found = Some(hash);
            }
        }
        let key = self.pair_key(&user, &password);
        if found.is_some() && self.cache.lock().is_ok_and(|c| c.contains(&key)) {
            return Access::Granted;
        }
        let now = std::time::Instant::now();
        if let Some(wait) = self.backoff.wait(peer, now) {
            self.failed_login();
            return Access::Backoff(wait.as_secs().max(1));
        }
        let hash = found.unwrap_or(&self.decoy_hash).to_owned();
        let waiting = self.waiting_checks.fetch_add(1, Ordering::SeqCst);
        let _leave = Leave(&self.waiting_checks);
        if waiting >= MAX_WAITING_CHECKS {
            self.failed_login();
            return Access::Busy;
        }
        let Ok(permit) = self.bcrypt_slot.clone().acquire_owned().await else {
            return Access::Denied;
        };
        let verified = tokio::task::spawn_blocking(move || {
            let ok = bcrypt::verify(&password, &hash).unwrap_or(false);
            drop(permit);
            ok
        })
        .await
        .unwrap_or(false);
        if verified && found.is_some() {
            if let Ok(mut cache) = self.cache.lock() {
                if cache.len() >= CACHE_CAPACITY {
                    cache.clear();
                }
                cache.insert(key);
            }
            self.backoff.succeeded(peer);
            Access::Granted
        } else {
            self.failed_login();
            if let Some(wait) = self.backoff.failed(peer, now) {
                tracing::debug!(%peer, wait = ?wait, "client in login backoff after repeated failures");
            }
            Access::Denied
        }
    }

    /// Counts a failed login and logs the count at most every [`FAILURE_LOG_INTERVAL`].
    fn failed_login(&self) {
        let Ok(mut log) = self.failures.lock() else { return };
        log.1 += 1;
        let now = std::time::Instant::now();
        if log
            .0
            .is_none_or(|last| now.duration_since(last) >= FAILURE_LOG_INTERVAL)
        {
            tracing::warn!(
                failed = log.1,
                "Basic authentication failures (wrong or missing password, or too many checks waiting) since the last report"
            );
            *log = (Some(now), 0);
        }
    }

    /// Keeps the verified-pairs cache of the config this one replaces when the users and their
    /// hashes are the same, so a reload does not make every scraper pay for bcrypt again.
    pub fn with_cache_of(mut self, old: &WebSecurity) -> WebSecurity {
        self.backoff = old.backoff.clone();
        if self.users == old.users {
            self.cache_key = old.cache_key;
            if let (Ok(mut mine), Ok(theirs)) = (self.cache.lock(), old.cache.lock()) {
                mine.clone_from(&theirs);
            }
        }
        self
    }

    /// SHA-256(per-process random key ‖ len(user) ‖ user ‖ password).
    fn pair_key(&self, user: &[u8], password: &[u8]) -> [u8; 32] {
        let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
        ctx.update(&self.cache_key);
        ctx.update(&(user.len() as u64).to_le_bytes());
        ctx.update(user);
        ctx.update(password);
        // A SHA-256 digest is 32 bytes, so the fallback is never taken.
        <[u8; 32]>::try_from(ctx.finish().as_ref()).unwrap_or_default()
    }
}

/// `Basic <base64(user:password)>` → (user, password). The scheme is case-insensitive; the user
/// must not be empty; the password may be (and may be any bytes).
pub fn decode_basic(header: &[u8]) -> Option<(Vec<u8>, Vec<u8>)> {
    let (scheme, rest) = header.split_at_checked(6)?;
    if !scheme.eq_ignore_ascii_case(b"basic ") {
        return None;
    }
    let decoded = decode_base64(rest.trim_ascii())?;
    let colon = decoded.iter().position(|&b| b == b':')?;
    if colon == 0 {
        return None;
    }
    Some((decoded[..colon].to_vec(), decoded[colon + 1..].to_vec()))
}

/// RFC 4648 base64, standard alphabet, padding required.
pub(super) fn decode_base64(input: &[u8]) -> Option<Vec<u8>> {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.decode(input).ok()
}

/// Equality whose time does not depend on the contents of the inputs (subtle); only their
/// lengths are not hidden.
pub(super) fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    a.ct_eq(b).into()
}

/// Leaves the waiting count when a check ends, however it ends.
struct Leave<'a>(&'a AtomicUsize);

impl Drop for Leave<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}
