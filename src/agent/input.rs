//! A worker's input queue: lines the API accepted, written by the loop as the stdin pipe
//! takes them, counted per process, carried over to a restart or handed back at the end.

use std::os::fd::{AsFd, OwnedFd};
use std::sync::{Condvar, Mutex, MutexGuard};

use rustix::event::epoll::{self, EventFlags};
use rustix::io::Errno;

use super::lock;

/// The queue's capacity kept once drained.
const KEEP_INPUT: usize = 64 * 1024;

/// The queue and the condition variable a blocked `input_wait` sleeps on.
#[derive(Debug)]
pub(super) struct InputCell {
    /// The epoll data of the worker's stdin (for `EPOLLOUT`).
    data: u64,
    queue: Mutex<Input>,
    /// Signalled when room frees up (the queue drained to a quarter of its limit: a
    /// producer wakes seldom, and the pipe keeps the worker busy meanwhile) or lines are no
    /// longer taken (input closed, worker over), while someone waits.
    room: Condvar,
}

impl InputCell {
    pub(super) fn new(limit: usize, data: u64) -> InputCell {
        InputCell {
            data,
            queue: Mutex::new(Input {
                stdin: Stdin::Closed,
                out: Vec::new(),
                out_held: 0,
                out_lines: 0,
                buf: Vec::new(),
                buf_lines: 0,
                off: 0,
                start: 0,
                limit,
                feed: Feed::Open,
                flush_pending: false,
                waiters: 0,
                lines_written: 0,
                bytes_written: 0,
            }),
            room: Condvar::new(),
        }
    }

    pub(super) fn lock(&self) -> MutexGuard<'_, Input> {
        lock(&self.queue)
    }

    /// Waits for the loop to make room or change the feed, at most until `deadline`;
    /// `false` once the deadline passed.
    pub(super) fn wait<'a>(
        &self,
        mut g: MutexGuard<'a, Input>,
        deadline: Option<std::time::Instant>,
    ) -> (MutexGuard<'a, Input>, bool) {
        g.waiters += 1;
        let (mut g, in_time) = match deadline {
            None => (self.room.wait(g).unwrap_or_else(|p| p.into_inner()), true),
            Some(d) => {
                let left = d.saturating_duration_since(std::time::Instant::now());
                if left.is_zero() {
                    (g, false)
                } else {
                    let (g, _) = self
                        .room
                        .wait_timeout(g, left)
                        .unwrap_or_else(|p| p.into_inner());
                    (g, true)
                }
            }
        };
        g.waiters -= 1;
        (g, in_time)
    }

    /// Wakes the waiters when there is something for them to see.
    pub(super) fn notify(&self, g: &Input) {
        if g.waiters > 0 && (matches!(g.feed, Feed::Closed | Feed::Over) || g.held() <= g.limit / 2)
        {
            self.room.notify_all();
        }
    }
}

/// Whether lines are taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Feed {
    /// Lines are taken and written: a process runs, or the worker waits out its back-off.
    Open,
    /// `close_input` was called: the queue is written, then stdin is closed, for this
    /// process and any restart; no more lines.
    Closed,
    /// The running process closed its stdin (a write failed with `EPIPE`, or it died):
    /// nothing more is written to it. Lines are still taken: they wait for a restart or
    /// are handed back when the worker is over.
    Broken,
    /// The worker is over: no process runs, none will.
    Over,
}

/// Why a line was not queued.
pub(super) enum Refused {
    /// No room within the limit (now, or ever for a line longer than the limit).
    Full { ever: bool },
    /// `close_input` was called.
    Closed,
    /// The worker is over.
    Over,
}

/// The bytes waiting for a worker's stdin (whole lines, each with its newline), and the
/// parent's end of the running process's stdin. Two buffers, so that the loop never
/// holds the lock during a system call: the API appends to `buf`; the loop writes `out`,
/// taking it (and the stdin) out of the lock for each write, and refills it from `buf`.
#[derive(Debug)]
pub(super) struct Input {
    stdin: Stdin,
    /// The lines the loop is writing (only the loop touches it).
    out: Vec<u8>,
    /// Bytes of `out` written to the current process.
    off: usize,
    /// Where the first line of `out` not yet written whole starts (`start <= off`).
    start: usize,
    /// `out.len() - start`, also while `out` is out of the lock.
    out_held: usize,
    /// The newlines in `out[off..]`: the lines a write of all the rest completes.
    out_lines: usize,
    /// Lines appended since `out` was filled.
    buf: Vec<u8>,
    /// How many (each push appends one).
    buf_lines: usize,
    limit: usize,
    pub(super) feed: Feed,
    /// The loop has been told to write (a `Flush` is on its way or a write is waiting for
    /// room); the API sends no other until the loop clears it.
    flush_pending: bool,
    waiters: usize,
    lines_written: u64,
    bytes_written: u64,
}

impl Input {
    /// The bytes held: not yet written whole.
    fn held(&self) -> usize {
        self.out_held + self.buf.len()
    }

    /// Appends `line` and a newline; `Ok(true)` when the loop must be told to write.
    pub(super) fn push(&mut self, line: &[u8]) -> Result<bool, Refused> {
        match self.feed {
            Feed::Open | Feed::Broken => {}
            Feed::Closed => return Err(Refused::Closed),
            Feed::Over => return Err(Refused::Over),
        }
        if self.held() + line.len() + 1 > self.limit {
            return Err(Refused::Full {
                ever: line.len() + 1 > self.limit,
            });
        }
        self.buf.reserve(line.len() + 1);
        self.buf.extend_from_slice(line);
        self.buf.push(b'\n');
        self.buf_lines += 1;
        Ok(!std::mem::replace(&mut self.flush_pending, true))
    }

    /// No more lines: the queue is written, then stdin closed (for this process and any
    /// restart). `false` when the worker is over.
    pub(super) fn close(&mut self) -> bool {
        if self.feed == Feed::Over {
            return false;
        }
        self.feed = Feed::Closed;
        true
    }

    /// Counts `n` bytes written from `off`, of which `lines` whole lines, the last ending
    /// at `off + end`.
    fn wrote(&mut self, n: usize, lines: usize, end: usize) {
        if lines > 0 {
            self.start = self.off + end;
            self.out_held = self.out.len() - self.start;
        }
        self.lines_written += lines as u64;
        self.bytes_written += n as u64;
        self.off += n;
        self.out_lines -= lines;
    }

    /// A new process: its stdin.
    pub(super) fn attach(&mut self, fd: Option<OwnedFd>) {
        self.stdin = fd.map_or(Stdin::Closed, Stdin::Open);
    }

    /// The current process is over: its stdin closed, its counts (lines, bytes written),
    /// reset for the next. A line it got only part of goes again whole.
    pub(super) fn end_process(&mut self, epoll: &OwnedFd) -> (u64, u64) {
        self.stdin.close(epoll);
        self.off = self.start;
        self.flush_pending = false;
        (
            std::mem::take(&mut self.lines_written),
            std::mem::take(&mut self.bytes_written),
        )
    }

    /// A new process takes the queue: lines are taken again unless input was closed.
    pub(super) fn restart(&mut self) {
        if self.feed == Feed::Broken {
            self.feed = Feed::Open;
        }
    }

    /// The worker is over: no more lines; the queued ones, handed back.
    pub(super) fn hand_back(&mut self) -> Vec<Vec<u8>> {
        self.feed = Feed::Over;
        let mut rest = std::mem::take(&mut self.out);
        rest.drain(..self.start);
        rest.append(&mut self.buf);
        let lines = rest
            .strip_suffix(b"\n")
            .map(|r| r.split(|&b| b == b'\n').map(<[u8]>::to_vec).collect())
            .unwrap_or_default();
        self.buf = Vec::new();
        (self.off, self.start, self.out_held) = (0, 0, 0);
        (self.out_lines, self.buf_lines) = (0, 0);
        self.flush_pending = false;
        lines
    }

    /// Everything is written: keep little memory; close stdin after `close_input`.
    fn drained(&mut self, epoll: &OwnedFd) {
        for b in [&mut self.out, &mut self.buf] {
            if b.capacity() > KEEP_INPUT {
                *b = Vec::new();
            } else {
                b.clear();
            }
        }
        (self.off, self.start, self.out_held) = (0, 0, 0);
        (self.out_lines, self.buf_lines) = (0, 0);
        self.flush_pending = false;
        self.stdin.disarm(epoll);
        if self.feed == Feed::Closed {
            self.stdin.close(epoll);
        }
    }
}

/// The parent's end of a process's stdin.
#[derive(Debug)]
enum Stdin {
    /// Open; the loop is not waiting for room.
    Open(OwnedFd),
    /// Open, and registered in epoll for `EPOLLOUT`: the pipe was full.
    Armed(OwnedFd),
    /// Closed (end of input, a broken pipe, or the process ended).
    Closed,
}

impl Stdin {
    /// Closes it (and stops watching it).
    fn close(&mut self, epoll: &OwnedFd) {
        if let Stdin::Armed(fd) = std::mem::replace(self, Stdin::Closed) {
            let _ = epoll::delete(epoll, &fd);
        }
    }

    fn disarm(&mut self, epoll: &OwnedFd) {
        if let Stdin::Armed(_) = self {
            let Stdin::Armed(fd) = std::mem::replace(self, Stdin::Closed) else {
                unreachable!()
            };
            let _ = epoll::delete(epoll, &fd);
            *self = Stdin::Open(fd);
        }
    }
}

/// Writes the queue to the pipe until it is empty or the pipe is full (then waits for
/// `EPOLLOUT`); closes stdin once drained after `close_input`. Called by the loop only;
/// the lock is not held during the writes.
pub(super) fn pump(epoll: &OwnedFd, cell: &InputCell) {
    let mut g = cell.lock();
    loop {
        let inp = &mut *g;
        if inp.off == inp.out.len() {
            if inp.buf.is_empty() {
                inp.drained(epoll);
                break;
            }
            // Take what the API appended.
            inp.out.clear();
            std::mem::swap(&mut inp.out, &mut inp.buf);
            (inp.off, inp.start, inp.out_held) = (0, 0, inp.out.len());
            inp.out_lines = std::mem::take(&mut inp.buf_lines);
        }
        if let Stdin::Closed = inp.stdin {
            // Nothing to write to: no Flush is needed until a process takes the queue
            // (its start writes it).
            inp.flush_pending = true;
            break;
        }
        let (out, mut stdin, off, out_lines) = (
            std::mem::take(&mut inp.out),
            std::mem::replace(&mut inp.stdin, Stdin::Closed),
            inp.off,
            inp.out_lines,
        );
        drop(g);
        let res = match &stdin {
            Stdin::Open(fd) | Stdin::Armed(fd) => rustix::io::write(fd, &out[off..]),
            Stdin::Closed => unreachable!(),
        };
        let (lines, end) = match res {
            // All the rest: every line it holds, the last ending it.
            Ok(n) if off + n == out.len() => (out_lines, n),
            Ok(n) => {
                let done = &out[off..off + n];
                let lines = memchr::memchr_iter(b'\n', done).count();
                (lines, memchr::memrchr(b'\n', done).map_or(0, |i| i + 1))
            }
            Err(_) => (0, 0),
        };
        g = cell.lock();
        g.out = out;
        match res {
            Ok(n) => g.wrote(n, lines, end),
            Err(Errno::INTR) => {}
            Err(Errno::AGAIN) => {
                if let Stdin::Open(fd) = stdin {
                    let data = epoll::EventData::new_u64(cell.data);
                    match epoll::add(epoll, fd.as_fd(), data, EventFlags::OUT) {
                        Ok(()) => stdin = Stdin::Armed(fd),
                        // Cannot wait for room: nothing more is written to this process
                        // (the queue stays for a restart or is handed back).
                        Err(_) => {
                            g.feed = broken(g.feed);
                            stdin = Stdin::Closed;
                        }
                    }
                }
                g.stdin = stdin;
                break;
            }
            Err(_) => {
                // EPIPE: the process closed its stdin (or exited). Nothing more goes in;
                // what is queued stays queued.
                g.feed = broken(g.feed);
                stdin.close(epoll);
            }
        }
        g.stdin = stdin;
        cell.notify(&g);
    }
    cell.notify(&g);
}

fn broken(f: Feed) -> Feed {
    match f {
        Feed::Open => Feed::Broken,
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What `pump` does before it writes: `out` takes `buf`.
    fn take_out(g: &mut Input) {
        g.out = std::mem::take(&mut g.buf);
        g.out_held = g.out.len();
        g.out_lines = std::mem::take(&mut g.buf_lines);
    }

    /// A pipe whose read end is drained by a thread, and the bytes it read.
    fn reader() -> (OwnedFd, std::thread::JoinHandle<Vec<u8>>) {
        let (r, w) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC).unwrap();
        let t = std::thread::spawn(move || {
            let mut all = Vec::new();
            let mut b = [0u8; 4096];
            loop {
                match rustix::io::read(&r, &mut b) {
                    Ok(0) | Err(_) => return all,
                    Ok(n) => all.extend_from_slice(&b[..n]),
                }
            }
        });
        (w, t)
    }

    #[test]
    fn pump_counts_the_lines_of_whole_and_cut_writes() {
        let ep = epoll();
        let cell = InputCell::new(1 << 20, 0);
        let (w, t) = reader();
        cell.lock().attach(Some(w));
        // Whole writes: the count comes from the pushes.
        for l in [&b"a"[..], b"bb", b""] {
            cell.lock().push(l).ok().unwrap();
        }
        pump(&ep, &cell);
        let counts = |g: &Input| (g.lines_written, g.bytes_written);
        assert_eq!(counts(&cell.lock()), (3, 6));
        // A cut line, then its rest, as after a short write: counted from the bytes.
        {
            let mut g = cell.lock();
            g.push(b"cut").ok().unwrap();
            g.push(b"x").ok().unwrap();
            take_out(&mut g);
            g.wrote(2, 0, 0);
            assert_eq!((g.lines_written, g.out_lines), (3, 2));
            g.wrote(2, 1, 2);
            assert_eq!((g.lines_written, g.out_lines, g.start), (4, 1, 4));
        }
        pump(&ep, &cell);
        let mut g = cell.lock();
        assert_eq!(
            (g.lines_written, g.bytes_written, g.out_lines),
            (5, 6 + 6, 0)
        );
        assert_eq!(g.end_process(&ep), (5, 12));
        drop(g);
        // Only what pump wrote reached the pipe (the cut line above was simulated).
        assert_eq!(t.join().unwrap(), b"a\nbb\n\nx\n");
    }

    fn epoll() -> OwnedFd {
        epoll::create(epoll::CreateFlags::CLOEXEC).unwrap()
    }

    #[test]
    fn counts_whole_lines_and_rewinds_a_cut_one() {
        let ep = epoll();
        let cell = InputCell::new(100, 0);
        let mut g = cell.lock();
        assert!(matches!(g.push(b"ab"), Ok(true)));
        assert!(matches!(g.push(b"cde"), Ok(false)));
        // "ab\ncd" written: one line and a part.
        take_out(&mut g);
        g.wrote(5, 1, 3);
        assert_eq!((g.lines_written, g.bytes_written, g.start), (1, 5, 3));
        assert_eq!(g.end_process(&ep), (1, 5));
        assert_eq!((g.off, g.start, g.held()), (3, 3, 4));
        g.restart();
        g.wrote(4, 1, 4);
        assert_eq!(g.end_process(&ep), (1, 4));
        assert!(g.hand_back().is_empty());
        assert!(matches!(g.push(b"x"), Err(Refused::Over)));
    }

    #[test]
    fn limit_and_hand_back() {
        let ep = epoll();
        let cell = InputCell::new(8, 0);
        let mut g = cell.lock();
        assert!(matches!(
            g.push(b"12345678"),
            Err(Refused::Full { ever: true })
        ));
        g.push(b"123").ok().unwrap();
        g.push(b"45").ok().unwrap();
        assert!(matches!(g.push(b"6"), Err(Refused::Full { ever: false })));
        take_out(&mut g);
        g.wrote(2, 0, 0);
        g.end_process(&ep);
        assert_eq!(g.hand_back(), [b"123".to_vec(), b"45".to_vec()]);
    }
}
