//! [`Capture`]: a bounded, shared buffer for a machine's serial output, so
//! the output written so far can be read while or after the machine runs
//! (test runners, embedders, doctests).

use std::io::Write;
use std::sync::{Arc, Mutex, MutexGuard};

/// Serial output kept by default; the rest is counted and dropped.
pub const DEFAULT_CAPTURE_LIMIT: usize = 4 << 20;

#[derive(Debug, Default)]
struct Inner {
    bytes: Vec<u8>,
    dropped: u64,
    limit: usize,
}

/// A `Write` into a shared buffer of at most a limit of bytes; clones
/// share the buffer.
#[derive(Clone, Debug)]
pub struct Capture(Arc<Mutex<Inner>>);

impl Default for Capture {
    fn default() -> Self {
        Capture::with_limit(DEFAULT_CAPTURE_LIMIT)
    }
}

impl Capture {
    /// A capture keeping [`DEFAULT_CAPTURE_LIMIT`] bytes.
    pub fn new() -> Capture {
        Capture::default()
    }

    /// A capture keeping at most `limit` bytes.
    pub fn with_limit(limit: usize) -> Capture {
        Capture(Arc::new(Mutex::new(Inner {
            limit,
            ..Inner::default()
        })))
    }

    fn inner(&self) -> MutexGuard<'_, Inner> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The bytes kept so far, as text (invalid UTF-8 replaced).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.inner().bytes).into_owned()
    }

    /// Take the bytes kept so far and the count of bytes dropped.
    pub fn take(&self) -> (Vec<u8>, u64) {
        let mut g = self.inner();
        (std::mem::take(&mut g.bytes), g.dropped)
    }
}

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let mut g = self.inner();
        let room = g.limit.saturating_sub(g.bytes.len()).min(buf.len());
        g.bytes.extend_from_slice(&buf[..room]);
        g.dropped += (buf.len() - room) as u64;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capture_is_bounded_and_shared() {
        let mut c = Capture::with_limit(4);
        let seen = c.clone();
        c.write_all(b"abc").unwrap();
        c.write_all(b"def").unwrap();
        assert_eq!(seen.text(), "abcd");
        assert_eq!(seen.take(), (b"abcd".to_vec(), 2));
    }
}
