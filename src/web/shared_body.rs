//! Bodies shared by concurrent requests for the same thing. When 250 dashboards poll
//! `/api/v1/endpoints` at once, each used to build its own copy of a multi-megabyte JSON body;
//! now the first request renders it (and gzips it, once, if asked) and every request within
//! [`FRESH_FOR`] gets the same reference-counted bytes. Memory stays at one body (plus its gzip)
//! per distinct query, whatever the number of clients.

use std::collections::HashMap;
use std::io::Write;
use std::time::{Duration, Instant};

use bytes::Bytes;
use flate2::Compression;
use flate2::write::GzEncoder;
use tokio::sync::Mutex;

/// How long a rendering is reused. Readers see data at most this old, on top of the round
/// interval they already wait for.
pub const FRESH_FOR: Duration = Duration::from_secs(1);
/// Distinct queries kept at most; a flood of distinct queries renders each, keeps none long.
const MAX_ENTRIES: usize = 32;

struct Entry {
    made: Instant,
    plain: Bytes,
    gzip: Option<Bytes>,
}

#[derive(Default)]
pub struct SharedBodies {
    entries: Mutex<HashMap<String, Entry>>,
}

impl SharedBodies {
    /// The body for `key`, rendered by `render` unless a fresh one exists; gzipped when `gzip`.
    /// Renderings are serialised: concurrent requests wait for the first instead of rendering
    /// their own.
    pub async fn get<E>(&self, key: &str, gzip: bool, render: impl FnOnce() -> Result<Vec<u8>, E>) -> Result<Bytes, E> {
        let mut entries = self.entries.lock().await;
        let now = Instant::now();
        let fresh = entries.get(key).is_some_and(|e| now.duration_since(e.made) < FRESH_FOR);
        if !fresh {
            let plain = Bytes::from(render()?);
            // Fresh from when it is ready: the requests that waited for it all get it, however
            // long it took to render.
            let now = Instant::now();
            entries.retain(|_, e| now.duration_since(e.made) < FRESH_FOR);
            if entries.len() >= MAX_ENTRIES {
                entries.clear();
            }
            entries.insert(
                key.to_owned(),
                Entry {
                    made: now,
                    plain,
                    gzip: None,
                },
            );
        }
        // Present: checked fresh or just inserted above.
        let entry = entries.entry(key.to_owned()).or_insert_with(|| Entry {
            made: now,
            plain: Bytes::new(),
            gzip: None,
        });
        if !gzip {
            return Ok(entry.plain.clone());
        }
        Ok(entry.gzip.get_or_insert_with(|| compress(&entry.plain)).clone())
    }
}

fn compress(plain: &[u8]) -> Bytes {
    let mut encoder = GzEncoder::new(Vec::with_capacity(plain.len() / 8), Compression::fast());
    // Writing into a Vec cannot fail.
    let _ = encoder.write_all(plain);
    Bytes::from(encoder.finish().unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::convert::Infallible;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[tokio::test]
    async fn concurrent_requests_share_one_rendering_and_one_gzip() {
        let shared = Arc::new(SharedBodies::default());
        let renders = Arc::new(AtomicUsize::new(0));
        let mut tasks = Vec::new();
        for i in 0..50 {
            let (shared, renders) = (shared.clone(), renders.clone());
            tasks.push(tokio::spawn(async move {
                shared
                    .get("q=a", i % 2 == 0, || {
                        renders.fetch_add(1, Ordering::SeqCst);
                        Ok::<_, Infallible>(b"[{\"id\":\"E1\"}]".repeat(1000))
                    })
                    .await
            }));
        }
        let mut bodies = Vec::new();
        for t in tasks {
            bodies.push(t.await.expect("join").expect("render"));
        }
        assert_eq!(renders.load(Ordering::SeqCst), 1);
        // Every plain body is the same allocation, and so is every gzip body.
        let (plain, gz): (Vec<_>, Vec<_>) = bodies.iter().enumerate().partition(|(i, _)| i % 2 == 1);
        assert!(plain.windows(2).all(|w| w[0].1.as_ptr() == w[1].1.as_ptr()));
        assert!(gz.windows(2).all(|w| w[0].1.as_ptr() == w[1].1.as_ptr()));
        let mut d = flate2::read::GzDecoder::new(&gz[0].1[..]);
        let mut out = Vec::new();
        std::io::Read::read_to_end(&mut d, &mut out).expect("gunzip");
        assert_eq!(out, plain[0].1.to_vec());
        // A different query renders its own.
        shared
            .get("q=b", false, || Ok::<_, Infallible>(b"[]".to_vec()))
            .await
            .expect("render");
        assert_eq!(renders.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn a_rendering_error_is_returned_and_nothing_is_kept() {
        let shared = SharedBodies::default();
        let e = shared.get("x", false, || Err::<Vec<u8>, _>("boom")).await;
        assert_eq!(e, Err("boom"));
        let ok = shared.get("x", false, || Ok::<_, &str>(b"1".to_vec())).await;
        assert_eq!(ok.as_deref().ok(), Some(&b"1"[..]));
    }
}
