//! Copier threads between a child's pipes and the caller's readers and writers.

use std::fs::File;
use std::io;
use std::io::{Read, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::sync::{Arc, Mutex, mpsc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::capture::Sink;
use crate::error::{Error, Result};
use crate::sys;

pub(super) enum CopyJob {
    In(Arc<Mutex<dyn Read + Send>>, OwnedFd),
    Out(Arc<Mutex<dyn Write + Send>>, OwnedFd),
}

/// The receiver, without locking (it is only reached by `&mut`).
fn lock_rx(m: &mut Mutex<mpsc::Receiver<()>>) -> &mut mpsc::Receiver<()> {
    m.get_mut().unwrap_or_else(|p| p.into_inner())
}

/// What a copier thread runs, given the cancel pipe.
type Task = Box<dyn FnOnce(BorrowedFd<'_>) -> io::Result<()> + Send>;

pub(super) enum CopyEnd {
    Done,
    DelayExpired,
}

/// Threads copying between a child's pipes and user readers/writers: one for all of a
/// child's output streams going to writers, one per reader feeding its stdin (a reader
/// may block for its own reasons, and must not hold up the output). Each polls its pipes
/// together with a cancel pipe, so the wait delay can stop it.
#[derive(Debug)]
pub(super) struct Copiers {
    threads: Vec<JoinHandle<io::Result<()>>>,
    /// (In a mutex only so that a `Child` is `Sync`; `finish` takes it by `&mut`.)
    done: Mutex<mpsc::Receiver<()>>,
    cancel: Option<OwnedFd>,
}

impl Copiers {
    pub(super) fn start(copies: Vec<CopyJob>) -> Result<Copiers> {
        let (cancel_r, cancel_w) = crate::sys::pipe::pipe()?;
        let cancel_r = Arc::new(cancel_r);
        let (tx, rx) = mpsc::channel();
        let mut threads = Vec::new();
        let mut outs = Vec::new();
        let mut tasks: Vec<Task> = Vec::new();
        for c in copies {
            match c {
                CopyJob::Out(w, fd) => outs.push((w, fd)),
                CopyJob::In(r, fd) => tasks.push(Box::new(move |cancel| copy_in(r, fd, cancel))),
            }
        }
        if !outs.is_empty() {
            tasks.push(Box::new(move |cancel| copy_out(outs, cancel)));
        }
        for task in tasks {
            let (tx, cancel_r) = (tx.clone(), cancel_r.clone());
            let h = std::thread::Builder::new()
                .name("forkexec-copy".into())
                .spawn(move || {
                    let r = task(cancel_r.as_fd());
                    let _ = tx.send(());
                    r
                })
                .map_err(Error::from_io)?;
            threads.push(h);
        }
        Ok(Copiers {
            threads,
            done: Mutex::new(rx),
            cancel: Some(cancel_w),
        })
    }

    pub(super) fn finish(mut self, wait_delay: Option<Duration>) -> Result<CopyEnd> {
        let mut end = CopyEnd::Done;
        if let Some(d) = wait_delay {
            let deadline = Instant::now().checked_add(d);
            for _ in 0..self.threads.len() {
                let left = deadline.map_or(Duration::MAX, |t| {
                    t.saturating_duration_since(Instant::now())
                });
                if lock_rx(&mut self.done).recv_timeout(left).is_err() {
                    end = CopyEnd::DelayExpired;
                    break;
                }
            }
        }
        // Stop the copies only when the delay ran out; otherwise they end at EOF.
        if let CopyEnd::DelayExpired = end {
            drop(self.cancel.take());
            // A copy blocked in the caller's own reader or writer cannot see the cancel:
            // give the others a moment to stop, then leave the stuck ones behind (as Go
            // leaves its goroutine) rather than blocking past the delay.
            let grace = Instant::now() + Duration::from_millis(50);
            while self.threads.iter().any(|t| !t.is_finished()) && Instant::now() < grace {
                let _ = lock_rx(&mut self.done).recv_timeout(Duration::from_millis(5));
            }
            self.threads.retain(|t| t.is_finished());
        }
        let mut first_err = None;
        for t in self.threads.drain(..) {
            match t.join() {
                Ok(Ok(())) => {}
                Ok(Err(e)) => {
                    first_err.get_or_insert(e);
                }
                Err(_) => {
                    first_err.get_or_insert(io::Error::other("stdio copy thread panicked"));
                }
            }
        }
        match (end, first_err) {
            (CopyEnd::DelayExpired, _) => Ok(CopyEnd::DelayExpired),
            (_, Some(e)) if e.kind() != io::ErrorKind::BrokenPipe => Err(Error::from_io(e)),
            _ => Ok(CopyEnd::Done),
        }
    }
}

/// Waits until `fd` is ready for `events` or the cancel pipe closes; `false` on cancel.
fn wait_ready(fd: BorrowedFd<'_>, events: i16, cancel: BorrowedFd<'_>) -> io::Result<bool> {
    let mut p = [
        libc::pollfd {
            fd: fd.as_raw_fd(),
            events,
            revents: 0,
        },
        sys::poll_in(cancel.as_raw_fd()),
    ];
    sys::poll_until(&mut p, None).map_err(io::Error::from_raw_os_error)?;
    // The cancel pipe first: once it closed, nothing more is copied.
    Ok(p[1].revents == 0)
}

/// Copies the child's output pipes to their writers until every pipe is at EOF (or the
/// cancel pipe closes), polling them all: one thread for all of a child's output streams.
/// A writer is locked for one chunk at a time, never across a wait on the pipe: copiers
/// sharing one writer take turns and cannot deadlock. A writer that fails stops its stream
/// (the pipe is closed, so the child gets `EPIPE`); the first error is returned at the end.
fn copy_out(mut outs: Vec<(Sink, OwnedFd)>, cancel: BorrowedFd<'_>) -> io::Result<()> {
    let mut buf = vec![0u8; 64 * 1024];
    let mut first_err = None;
    let mut pfds = Vec::with_capacity(outs.len() + 1);
    while !outs.is_empty() {
        pfds.clear();
        pfds.push(sys::poll_in(cancel.as_raw_fd()));
        pfds.extend(outs.iter().map(|(_, fd)| sys::poll_in(fd.as_raw_fd())));
        sys::poll_until(&mut pfds, None).map_err(io::Error::from_raw_os_error)?;
        if pfds[0].revents != 0 {
            break; // cancelled (the wait delay ran out)
        }
        for idx in (0..outs.len()).rev() {
            if pfds[idx + 1].revents == 0 {
                continue;
            }
            let (w, fd) = &outs[idx];
            let r = match sys::read(fd.as_fd(), &mut buf) {
                Ok(0) => w
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .flush()
                    .map(|()| false),
                Ok(n) => {
                    let mut w = w.lock().unwrap_or_else(|p| p.into_inner());
                    w.write_all(&buf[..n]).map(|()| true)
                }
                Err(libc::EINTR | libc::EAGAIN) => Ok(true),
                Err(e) => Err(io::Error::from_raw_os_error(e)),
            };
            match r {
                Ok(true) => {}
                Ok(false) => drop(outs.remove(idx)),
                Err(e) => {
                    first_err.get_or_insert(e);
                    drop(outs.remove(idx));
                }
            }
        }
    }
    first_err.map_or(Ok(()), Err)
}

/// Feeds a reader to the child's stdin pipe until the reader ends (or the cancel pipe
/// closes). The reader is locked for one chunk at a time.
fn copy_in(r: Arc<Mutex<dyn Read + Send>>, fd: OwnedFd, cancel: BorrowedFd<'_>) -> io::Result<()> {
    let mut buf = vec![0u8; 64 * 1024];
    let mut file = File::from(fd);
    loop {
        let n = r.lock().unwrap_or_else(|p| p.into_inner()).read(&mut buf)?;
        if n == 0 {
            return Ok(());
        }
        if !wait_ready(file.as_fd(), libc::POLLOUT, cancel)? {
            return Ok(());
        }
        file.write_all(&buf[..n])?;
    }
}
