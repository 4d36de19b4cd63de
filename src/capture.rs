//! What `Cmd::output` keeps of a stream: everything, a capped prefix, or (for the stderr an
//! error carries) Go's first and last 32 KiB with a marker of what was left out; or, for a
//! stream that goes to the caller's writer, nothing: each chunk is handed on as it comes.

use std::io::{self, Write};
use std::sync::{Arc, Mutex};

/// The caller's writer a stream is forwarded to.
pub(crate) type Sink = Arc<Mutex<dyn Write + Send>>;

/// How much of a captured stream is kept in memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Keep {
    /// Every byte.
    All,
    /// The first `n` bytes; more is an overflow (the caller decides what that means).
    Cap(usize),
    /// The first and the last [`HALF`] bytes, as Go keeps a failing command's stderr in
    /// `ExitError.Stderr` (`prefixSuffixSaver`).
    PrefixSuffix,
}

/// How much of the start and of the end of a stream [`Keep::PrefixSuffix`] keeps.
pub(crate) const HALF: usize = 32 * 1024;

/// Room beyond the kept bytes before the middle is dropped: the middle is cut out once per
/// this many bytes read, so a long stream costs one 32 KiB move per 256 KiB.
const SLACK: usize = 256 * 1024;

/// A stream being captured under a [`Keep`] policy.
pub(crate) struct Capture {
    pub(crate) buf: Vec<u8>,
    keep: Keep,
    /// Bytes read and not kept.
    dropped: u64,
    /// Where every chunk goes instead of being kept (the writer is locked for one chunk at
    /// a time), and the first error it returned.
    sink: Option<(Sink, Option<io::Error>)>,
}

impl std::fmt::Debug for Capture {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Capture")
            .field("kept", &self.buf.len())
            .field("keep", &self.keep)
            .field("dropped", &self.dropped)
            .field("forwarded", &self.sink.is_some())
            .finish()
    }
}

impl Capture {
    pub(crate) fn new(keep: Keep) -> Capture {
        Capture {
            buf: Vec::new(),
            keep,
            dropped: 0,
            sink: None,
        }
    }

    /// A stream handed on to `sink` chunk by chunk: nothing is kept.
    pub(crate) fn forward(sink: Sink) -> Capture {
        Capture {
            sink: Some((sink, None)),
            ..Capture::new(Keep::All)
        }
    }

    /// Whether the writer this stream goes to failed: nothing more is read (the caller
    /// closes the pipe, so the child gets `EPIPE`, as with a copy thread that stopped).
    pub(crate) fn sink_failed(&self) -> bool {
        matches!(self.sink, Some((_, Some(_))))
    }

    /// At the end of the stream: flushes the writer; its first error, if any.
    pub(crate) fn end_sink(&mut self) -> Option<io::Error> {
        let (sink, err) = self.sink.as_mut()?;
        if err.is_none() {
            if let Err(e) = sink.lock().unwrap_or_else(|p| p.into_inner()).flush() {
                *err = Some(e);
            }
        }
        err.take()
    }

    /// Applies the policy after bytes were appended to `buf` (for a forwarded stream:
    /// writes them on and empties `buf`, keeping its room).
    #[inline]
    pub(crate) fn trim(&mut self) {
        if let Some((sink, err)) = &mut self.sink {
            if err.is_none() && !self.buf.is_empty() {
                let mut w = sink.lock().unwrap_or_else(|p| p.into_inner());
                if let Err(e) = w.write_all(&self.buf) {
                    *err = Some(e);
                }
            }
            self.buf.clear();
            return;
        }
        match self.keep {
            Keep::All => {}
            Keep::Cap(n) => {
                if self.buf.len() > n {
                    self.dropped += (self.buf.len() - n) as u64;
                    self.buf.truncate(n);
                }
            }
            Keep::PrefixSuffix => {
                if self.buf.len() > 2 * HALF + SLACK {
                    let cut = self.buf.len() - 2 * HALF;
                    self.dropped += cut as u64;
                    self.buf.drain(HALF..HALF + cut);
                }
            }
        }
    }

    /// Whether bytes were dropped under [`Keep::Cap`].
    pub(crate) fn overflowed(&self) -> bool {
        matches!(self.keep, Keep::Cap(_)) && self.dropped > 0
    }

    /// The kept bytes as an error may hold them: at most the first and last 32 KiB, as
    /// [`Keep::PrefixSuffix`] keeps them (whatever this capture's own policy).
    pub(crate) fn into_bounded(mut self) -> Vec<u8> {
        self.keep = Keep::PrefixSuffix;
        self.into_bytes()
    }

    /// The kept bytes; under [`Keep::PrefixSuffix`] with the middle cut out, the first and
    /// last 32 KiB around Go's marker `"\n... omitting N bytes ...\n"`.
    pub(crate) fn into_bytes(mut self) -> Vec<u8> {
        if self.keep != Keep::PrefixSuffix {
            return self.buf;
        }
        if self.buf.len() > 2 * HALF {
            let cut = self.buf.len() - 2 * HALF;
            self.dropped += cut as u64;
            self.buf.drain(HALF..HALF + cut);
        }
        if self.dropped == 0 {
            return self.buf;
        }
        let marker = format!("\n... omitting {} bytes ...\n", self.dropped);
        let mut out = Vec::with_capacity(self.buf.len() + marker.len());
        out.extend_from_slice(&self.buf[..HALF]);
        out.extend_from_slice(marker.as_bytes());
        out.extend_from_slice(&self.buf[HALF..]);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds `total` bytes (byte i = i mod 251) in chunks of `chunk`, as reads would.
    fn feed(keep: Keep, total: usize, chunk: usize) -> Capture {
        let mut c = Capture::new(keep);
        let mut i = 0;
        while i < total {
            let n = chunk.min(total - i);
            c.buf.extend((i..i + n).map(|k| (k % 251) as u8));
            c.trim();
            assert!(c.buf.len() <= 2 * HALF + SLACK + chunk, "unbounded");
            i += n;
        }
        c
    }

    #[test]
    fn prefix_suffix_like_go() {
        // Small: kept whole, no marker.
        let c = feed(Keep::PrefixSuffix, 2 * HALF, 1000);
        assert_eq!(c.into_bytes().len(), 2 * HALF);
        // Large: first and last 32 KiB, the count of the rest in between.
        let total = 3_000_000;
        let out = feed(Keep::PrefixSuffix, total, 65536).into_bytes();
        let marker = format!("\n... omitting {} bytes ...\n", total - 2 * HALF);
        assert_eq!(out.len(), 2 * HALF + marker.len());
        let want_head: Vec<u8> = (0..HALF).map(|k| (k % 251) as u8).collect();
        let want_tail: Vec<u8> = (total - HALF..total).map(|k| (k % 251) as u8).collect();
        assert_eq!(&out[..HALF], &want_head[..]);
        assert_eq!(&out[HALF..HALF + marker.len()], marker.as_bytes());
        assert_eq!(&out[HALF + marker.len()..], &want_tail[..]);
    }

    #[test]
    fn cap_keeps_a_prefix_and_says_so() {
        let c = feed(Keep::Cap(1000), 999, 100);
        assert!(!c.overflowed());
        let c = feed(Keep::Cap(1000), 5000, 300);
        assert!(c.overflowed());
        let b = c.into_bytes();
        assert_eq!(b.len(), 1000);
        assert!(b.iter().enumerate().all(|(i, &x)| x == (i % 251) as u8));
    }
}
