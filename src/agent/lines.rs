//! Splitting a byte stream into lines with a bound on the bytes held.

/// Above this capacity the held buffer is freed once it has been delivered, so a single
/// long line does not pin its memory for the worker's whole life.
const KEEP_CAPACITY: usize = 64 * 1024;

/// Cuts a stream into `\n`-terminated lines (the newline is not delivered).
///
/// A line of `L` bytes is delivered as `max(1, ceil(L / max))` pieces: every piece but the
/// last has exactly `max` bytes, the last has the rest (an empty line is one empty piece).
/// At most `max` bytes are ever held.
#[derive(Debug, Default)]
pub(super) struct Splitter {
    held: Vec<u8>,
}

impl Splitter {
    /// Feeds `data`, delivering every complete line (or full piece) to `emit`.
    pub(super) fn feed(&mut self, mut data: &[u8], max: usize, emit: &mut dyn FnMut(&[u8])) {
        while let Some(i) = memchr::memchr(b'\n', data) {
            self.complete(&data[..i], max, emit);
            data = &data[i + 1..];
        }
        self.hold(data, max, emit);
    }

    /// Delivers what is held (a last line without a newline), if anything.
    pub(super) fn finish(&mut self, emit: &mut dyn FnMut(&[u8])) {
        if !self.held.is_empty() {
            emit(&self.held);
        }
        self.held = Vec::new();
    }

    /// The bytes held, waiting for their newline.
    #[cfg(test)]
    fn held(&self) -> usize {
        self.held.len()
    }

    /// `seg` ends a line (its newline was just seen).
    fn complete(&mut self, seg: &[u8], max: usize, emit: &mut dyn FnMut(&[u8])) {
        if self.held.is_empty() {
            if seg.is_empty() {
                emit(seg);
            } else {
                for c in seg.chunks(max) {
                    emit(c);
                }
            }
            return;
        }
        let room = max - self.held.len();
        if seg.len() <= room {
            self.push(seg, max);
            self.deliver_held(emit);
        } else {
            self.push(&seg[..room], max);
            self.deliver_held(emit);
            for c in seg[room..].chunks(max) {
                emit(c);
            }
        }
    }

    /// `data` has no newline: keep it, delivering full pieces when it passes `max`.
    fn hold(&mut self, mut data: &[u8], max: usize, emit: &mut dyn FnMut(&[u8])) {
        if data.is_empty() {
            return;
        }
        if self.held.len() + data.len() > max {
            let room = max - self.held.len();
            self.push(&data[..room], max);
            self.deliver_held(emit);
            data = &data[room..];
            while data.len() > max {
                emit(&data[..max]);
                data = &data[max..];
            }
        }
        self.push(data, max);
    }

    fn deliver_held(&mut self, emit: &mut dyn FnMut(&[u8])) {
        emit(&self.held);
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

#[cfg(test)]
mod tests {
    use super::*;

    fn run(chunks: &[&[u8]], max: usize) -> (Vec<Vec<u8>>, usize) {
        let mut s = Splitter::default();
        let mut out = Vec::new();
        let mut peak = 0;
        for c in chunks {
            s.feed(c, max, &mut |l| out.push(l.to_vec()));
            peak = peak.max(s.held.capacity());
        }
        s.finish(&mut |l| out.push(l.to_vec()));
        (out, peak)
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
            s.feed(&[b'z'; 37], 100, &mut |l| n += l.len());
            assert!(s.held() <= 100);
        }
        s.finish(&mut |l| n += l.len());
        assert_eq!(n, 37_000);
    }
}
