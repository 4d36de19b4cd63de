//! Readiness and exit: telling the parent (or systemd) that this process serves, and
//! learning that it must exit.

use std::os::fd::{AsFd, BorrowedFd};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use super::{READY_BYTE, Upgrader, io_error, notify, sd_notify, signals};
use crate::{Error, Result};
// For the intra-doc links of `# Errors` sections only.
#[cfg(doc)]
use crate::ErrorKind;

impl Upgrader {
    /// Says this process serves: closes the inherited fds nobody claimed, writes the PID
    /// file (if one was asked for) atomically, then tells the parent of an upgrade that it
    /// can exit — or, for a first process under systemd, sends `READY=1` and `MAINPID=`.
    /// A second call does nothing.
    ///
    /// A parent that is gone (killed meanwhile) is not an error: this process serves.
    ///
    /// # Errors
    /// [`ErrorKind::Io`] (or [`ErrorKind::PermissionDenied`]...) when the PID file cannot
    /// be written — nothing else happened then, and the call can be repeated; the error of
    /// [`sd_notify`].
    ///
    /// # Examples
    /// ```
    /// let up = forkexec::upgrade::Upgrader::new()?;
    /// up.ready()?;
    /// up.ready()?;
    /// assert!(up.is_ready());
    /// # Ok::<(), forkexec::Error>(())
    /// ```
    ///
    /// # References
    /// `write(2)`, `pipe(7)` (the readiness pipe); `sd_notify(3)` (`READY=1`, `MAINPID=`);
    /// `rename(2)` (the PID file).
    #[doc(alias = "sd_notify")]
    pub fn ready(&self) -> Result<()> {
        let mut st = self.lock();
        if st.ready {
            return Ok(());
        }
        let pid = std::process::id();
        if let Some(p) = &self.pid_file {
            notify::write_pid_file(p, pid).map_err(|e| {
                io_error(e, format!("upgrade: writing the PID file {}", p.display()))
            })?;
        }
        st.inherited.clear();
        st.ready = true;
        match st.ready_pipe.take() {
            Some(pipe) => {
                drop(st);
                match rustix::io::write(&pipe, &[READY_BYTE]) {
                    // EPIPE: the parent is gone; this process serves all the same.
                    Ok(_) | Err(rustix::io::Errno::PIPE) => {}
                    Err(e) => return Err(Error::os(e.raw_os_error())),
                }
            }
            None => {
                drop(st);
                sd_notify(&format!("READY=1\nMAINPID={pid}"))?;
            }
        }
        Ok(())
    }

    /// Whether [`ready`](Upgrader::ready) was called (and succeeded).
    ///
    /// # Examples
    /// ```
    /// let up = forkexec::upgrade::Upgrader::builder().inherit(false).build()?;
    /// assert!(!up.is_ready());
    /// up.ready()?;
    /// assert!(up.is_ready());
    /// # Ok::<(), forkexec::Error>(())
    /// ```
    pub fn is_ready(&self) -> bool {
        self.lock().ready
    }

    pub(super) fn close_exit_pipe(&self) {
        let w = self.exit_w.lock().unwrap_or_else(|p| p.into_inner()).take();
        drop(w);
    }

    /// Asks this process to exit, as a successful upgrade does (for `SIGTERM`, say): the
    /// server loop sees [`exit_requested`](Upgrader::exit_requested) and drains. Further
    /// upgrades are refused.
    ///
    /// # Examples
    /// ```
    /// let up = forkexec::upgrade::Upgrader::new()?;
    /// up.stop();
    /// assert!(up.exit_requested());
    /// # Ok::<(), forkexec::Error>(())
    /// ```
    ///
    /// # References
    /// `close(2)`: the write end of the exit pipe, which makes [`exit_fd`](Upgrader::exit_fd)
    /// readable (`pipe(7)`).
    pub fn stop(&self) {
        self.exiting.store(true, Ordering::SeqCst);
        self.close_exit_pipe();
    }

    /// Whether this process must exit: an upgrade succeeded, or [`stop`](Upgrader::stop)
    /// was called. Once `true`, it stays so.
    ///
    /// # Examples
    /// ```
    /// use forkexec::upgrade::Upgrader;
    /// let up = Upgrader::builder().inherit(false).build()?;
    /// assert!(!up.exit_requested());
    /// up.stop();
    /// assert!(up.exit_requested());
    /// // Exiting: no upgrade any more.
    /// up.ready()?;
    /// assert!(up.upgrade().unwrap_err().to_string().contains("exiting"));
    /// # Ok::<(), forkexec::Error>(())
    /// ```
    #[doc(alias = "Exit")]
    pub fn exit_requested(&self) -> bool {
        self.exiting.load(Ordering::SeqCst)
    }

    /// An fd that polls readable (and stays so) once this process must exit, for a
    /// `poll`/`epoll` loop next to the listeners.
    ///
    /// # Examples
    /// ```
    /// use std::time::Duration;
    /// use rustix::event::{poll, PollFd, PollFlags, Timespec};
    /// let up = forkexec::upgrade::Upgrader::new()?;
    /// let zero = Timespec { tv_sec: 0, tv_nsec: 0 };
    /// let mut p = [PollFd::from_borrowed_fd(up.exit_fd(), PollFlags::IN)];
    /// assert_eq!(poll(&mut p, Some(&zero))?, 0);
    /// up.stop();
    /// assert_eq!(poll(&mut p, Some(&zero))?, 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # References
    /// `poll(2)`, `pipe(7)` (a pipe whose write end is closed polls readable: end of file).
    #[doc(alias = "Exit")]
    pub fn exit_fd(&self) -> BorrowedFd<'_> {
        self.exit_r.as_fd()
    }

    /// Blocks until this process must exit.
    ///
    /// # Errors
    /// [`ErrorKind::Io`] when polling fails.
    ///
    /// # Examples
    /// ```
    /// let up = std::sync::Arc::new(forkexec::upgrade::Upgrader::new()?);
    /// let u = up.clone();
    /// let t = std::thread::spawn(move || u.wait_for_exit());
    /// up.stop();
    /// t.join().unwrap()?;
    /// # Ok::<(), forkexec::Error>(())
    /// ```
    ///
    /// # References
    /// `poll(2)`.
    #[doc(alias = "Exit")]
    pub fn wait_for_exit(&self) -> Result<()> {
        while !self.wait_for_exit_timeout(Duration::from_secs(3600))? {}
        Ok(())
    }

    /// Waits at most `timeout` for this process to be asked to exit; `true` if it was.
    ///
    /// # Errors
    /// [`ErrorKind::Io`] when polling fails.
    ///
    /// # Examples
    /// ```
    /// use std::time::Duration;
    /// let up = forkexec::upgrade::Upgrader::new()?;
    /// assert!(!up.wait_for_exit_timeout(Duration::from_millis(5))?);
    /// # Ok::<(), forkexec::Error>(())
    /// ```
    ///
    /// # References
    /// `poll(2)`.
    pub fn wait_for_exit_timeout(&self, timeout: Duration) -> Result<bool> {
        let deadline = Instant::now().checked_add(timeout);
        loop {
            if self.exit_requested() {
                return Ok(true);
            }
            let left = match deadline {
                Some(d) => d.saturating_duration_since(Instant::now()),
                None => timeout,
            };
            if left.is_zero() {
                return Ok(self.exit_requested());
            }
            signals::poll_in(self.exit_fd(), Some(left))?;
        }
    }
}
