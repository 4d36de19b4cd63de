//! Splitting a byte stream into lines with a bound on the bytes held.

/// Above this capacity the held buffer is freed once it has been delivered, so a single
/// long line does not pin its memory for the worker's whole life.
const KEEP_CAPACITY: usize = 64 * 1024;

/// Cuts a stream into `\n`-terminated lines (the newline is not delivered).
///
/// A line of `L` bytes is delivered as `max(1, ceil(L / max))` pieces: every piece but the
/// last has exactly `max` bytes, the last has the rest (an empty line is one empty piece).
/// At most `max` bytes are ever held. `emit(piece, complete)`: `complete` is true for the
/// piece that ends at its newline, false for a piece cut at `max` and for a last piece at
/// end of stream that had no newline.
#[derive(Debug, Default)]
pub(super) struct Splitter {
    held: Vec<u8>,
}

impl Splitter {
    /// Feeds `data`, delivering every complete line (or full piece) to `emit`.
    pub(super) fn feed(&mut self, mut data: &[u8], max: usize, emit: &mut dyn FnMut(&[u8], bool)) {
        while let Some(i) = memchr::memchr(b'\n', data) {
            self.complete(&data[..i], max, emit);
            data = &data[i + 1..];
        }
        self.hold(data, max, emit);
    }

    /// Delivers what is held (a last line without a newline), if anything.
    pub(super) fn finish(&mut self, emit: &mut dyn FnMut(&[u8], bool)) {
        if !self.held.is_empty() {
            emit(&self.held, false);
        }
        self.held = Vec::new();
    }

    /// The bytes held, waiting for their newline.
    #[cfg(test)]
    fn held(&self) -> usize {
        self.held.len()
    }

    /// `seg` ends a line (its newline was just seen).
    fn complete(&mut self, seg: &[u8], max: usize, emit: &mut dyn FnMut(&[u8], bool)) {
        if self.held.is_empty() {
            emit_pieces(seg, max, emit);
            return;
        }
        let room = max - self.held.len();
        if seg.len() <= room {
            self.push(seg, max);
            self.deliver_held(true, emit);
        } else {
            self.push(&seg[..room], max);
            self.deliver_held(false, emit);
            emit_pieces(&seg[room..], max, emit);
        }
    }

    /// `data` has no newline: keep it, delivering full pieces when it passes `max`.
    fn hold(&mut self, mut data: &[u8], max: usize, emit: &mut dyn FnMut(&[u8], bool)) {
        if data.is_empty() {
            return;
        }
        if self.held.len() + data.len() > max {
            let room = max - self.held.len();
            self.push(&data[..room], max);
            self.deliver_held(false, emit);
            data = &data[room..];
            while data.len() > max {
                emit(&data[..max], false);
                data = &data[max..];
            }
        }
        self.push(data, max);
    }

    fn deliver_held(&mut self, complete: bool, emit: &mut dyn FnMut(&[u8], bool)) {
        emit(&self.held, complete);
        if self.held.capacity() > KEEP_CAPACITY {
            self.held = Vec::new();
        } else {
            self.held.clear();
        }
    }

    /// Appends, growing the buffer by doubling but never past `max`.
    fn push(&mut self, seg: &[u8], max: usize) {
        let need = self.held.len() + seg.len();
        if need > self.held.capacity() {
            let want = need
                .max(self.held.capacity() * 2)
                .max(256)
                .min(max)
                .max(need);
            self.held.reserve_exact(want - self.held.len());
        }
        self.held.extend_from_slice(seg);
    }
}

/// Delivers `seg`, a whole line (its newline was seen), in pieces of at most `max` bytes;
/// only the last piece is complete. An empty line is one empty, complete piece.
fn emit_pieces(seg: &[u8], max: usize, emit: &mut dyn FnMut(&[u8], bool)) {
    let n = seg.len().div_ceil(max).max(1);
    for (i, c) in seg.chunks(max).enumerate() {
        emit(c, i + 1 == n);
    }
    if seg.is_empty() {
        emit(seg, true);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The pieces and their `complete` flags, and the peak capacity held.
    fn run_flags(chunks: &[&[u8]], max: usize) -> (Vec<(Vec<u8>, bool)>, usize) {
        let mut s = Splitter::default();
        let mut out = Vec::new();
        let mut peak = 0;
        for c in chunks {
            s.feed(c, max, &mut |l, done| out.push((l.to_vec(), done)));
            peak = peak.max(s.held.capacity());
        }
        s.finish(&mut |l, done| out.push((l.to_vec(), done)));
        (out, peak)
    }

    fn run(chunks: &[&[u8]], max: usize) -> (Vec<Vec<u8>>, usize) {
        let (out, peak) = run_flags(chunks, max);
        (out.into_iter().map(|(l, _)| l).collect(), peak)
    }

    #[test]
    fn complete_flags() {
        let (out, _) = run_flags(&[b"ab", b"cdefg\n\nxy"], 3);
        let want: [(&[u8], bool); 5] = [
            (b"abc", false),
            (b"def", false),
            (b"g", true),
            (b"", true),
            (b"xy", false),
        ];
        let got: Vec<(&[u8], bool)> = out.iter().map(|(l, c)| (&l[..], *c)).collect();
        assert_eq!(got, want);
        // Exactly max bytes then the newline: the piece is complete.
        let (out, _) = run_flags(&[b"abc\n"], 3);
        assert_eq!(out, [(b"abc".to_vec(), true)]);
    }

    #[test]
    fn splits_and_joins() {
        let (out, _) = run(&[b"ab", b"c\nd\n\nef", b"g"], 100);
        assert_eq!(out, [&b"abc"[..], b"d", b"", b"efg"]);
    }

    #[test]
    fn long_lines_come_in_pieces_of_max() {
        for max in 1..9 {
            for len in 0..30 {
                let line = vec![b'x'; len];
                let mut data = line.clone();
                data.push(b'\n');
                data.extend_from_slice(b"y\n");
                // Every way of cutting the input in two.
                for cut in 0..data.len() {
                    let (out, peak) = run(&[&data[..cut], &data[cut..]], max);
                    let pieces = len.div_ceil(max).max(1);
                    assert_eq!(out.len(), pieces + 1, "max {max} len {len} cut {cut}");
                    for p in &out[..pieces - 1] {
                        assert_eq!(p.len(), max);
                    }
                    assert_eq!(out[..pieces].concat(), line);
                    assert_eq!(out[pieces], b"y");
                    assert!(peak <= max.max(256));
                }
            }
        }
    }

    #[test]
    fn held_bytes_never_pass_max() {
        let mut s = Splitter::default();
        let mut n = 0;
        for _ in 0..1000 {
            s.feed(&[b'z'; 37], 100, &mut |l, _| n += l.len());
            assert!(s.held() <= 100);
        }
        s.finish(&mut |l, _| n += l.len());
        assert_eq!(n, 37_000);
    }
}
