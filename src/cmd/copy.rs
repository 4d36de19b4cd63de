//! Copier threads between a child's pipes and the caller's readers and writers.

use std::fs::File;
use std::io;
use std::io::{Read, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::sync::{Arc, Mutex, mpsc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::error::{Error, Result};
use crate::sys;

pub(super) enum CopyJob {
    In(Arc<Mutex<dyn Read + Send>>, OwnedFd),
    Out(Arc<Mutex<dyn Write + Send>>, OwnedFd),
}

pub(super) enum CopyEnd {
    Done,
    DelayExpired,
}

/// Threads copying between a child's pipes and user readers/writers. Each polls its pipe
/// together with a cancel pipe, so the wait delay can stop it.
#[derive(Debug)]
pub(super) struct Copiers {
    threads: Vec<JoinHandle<io::Result<()>>>,
    done: mpsc::Receiver<()>,
    cancel: Option<OwnedFd>,
}

impl Copiers {
    pub(super) fn start(copies: Vec<CopyJob>) -> Result<Copiers> {
        let (cancel_r, cancel_w) = crate::sys::pipe::pipe()?;
        let cancel_r = Arc::new(cancel_r);
        let (tx, rx) = mpsc::channel();
        let mut threads = Vec::new();
        for c in copies {
            let (tx, cancel_r) = (tx.clone(), cancel_r.clone());
            let h = std::thread::Builder::new()
                .name("forkexec-copy".into())
                .spawn(move || {
                    let r = copy_loop(c, cancel_r.as_fd());
                    let _ = tx.send(());
                    r
                })
                .map_err(Error::from_io)?;
            threads.push(h);
        }
        Ok(Copiers {
            threads,
            done: rx,
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
                if self.done.recv_timeout(left).is_err() {
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
                let _ = self.done.recv_timeout(Duration::from_millis(5));
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
pub(super) fn wait_ready(
    fd: BorrowedFd<'_>,
    events: i16,
    cancel: BorrowedFd<'_>,
) -> io::Result<bool> {
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

pub(super) fn copy_loop(c: CopyJob, cancel: BorrowedFd<'_>) -> io::Result<()> {
    let mut buf = vec![0u8; 64 * 1024];
    match c {
        // The user's writer or reader is locked for one chunk at a time, never across a
        // wait on the pipe: any number of copiers sharing one writer take turns and cannot
        // deadlock (one waiting for the lock while its child blocks on a full pipe).
        CopyJob::Out(w, fd) => loop {
            if !wait_ready(fd.as_fd(), libc::POLLIN, cancel)? {
                return Ok(());
            }
            let n = sys::read(fd.as_fd(), &mut buf).map_err(io::Error::from_raw_os_error)?;
            let mut w = w.lock().unwrap_or_else(|p| p.into_inner());
            if n == 0 {
                return w.flush();
            }
            w.write_all(&buf[..n])?;
        },
        CopyJob::In(r, fd) => {
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
    }
}
