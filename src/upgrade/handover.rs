//! The hand-over to a new binary: starting it with the registered fds and a readiness
//! pipe, waiting for its `ready()`, and ending it when it fails.

use std::ffi::{OsStr, OsString};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use super::env::{
    ENV_GENERATION, ENV_LISTEN_FDNAMES, ENV_LISTEN_FDS, ENV_LISTEN_PID, ENV_READY_FD,
    HANDOVER_VARS, LISTEN_FDS_START,
};
use super::{READY_BYTE, Upgrader, io_error, sd_notify, sock};
use crate::{Child, Cmd, Error, ErrorKind, Result, Stdio};

/// The outcome of a successful [`Upgrader::upgrade`].
///
/// # Examples
/// ```
/// use forkexec::raw::{WaitOptions, waitpid};
/// use forkexec::upgrade::{UpgradeOptions, Upgraded, Upgrader};
/// let up = Upgrader::builder().inherit(false).build()?;
/// up.ready()?;
/// // A "new binary" that writes the readiness byte on the pipe it is told of, then exits.
/// let mut opts = UpgradeOptions::new();
/// opts.program("/bin/sh").args(["-c", "printf R >&$FORKEXEC_UPGRADE_READY_FD"]);
/// let done: Upgraded = up.upgrade_with(&opts)?;
/// assert!(done.pid > 0);
/// println!("ready after {:?}", done.ready_after);
/// // It is left running (a real server would go on serving); this one has exited: reap it.
/// waitpid(done.pid, WaitOptions::empty())?;
/// # Ok::<(), forkexec::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Upgraded {
    /// The pid of the new process, now serving.
    pub pid: i32,
    /// The time from the call of `upgrade` to the new process's `ready()`.
    pub ready_after: Duration,
}

/// Per-upgrade choices for [`Upgrader::upgrade_with`]: another program or arguments, extra
/// environment, another timeout.
///
/// # Examples
/// ```
/// use std::time::Duration;
/// use forkexec::upgrade::UpgradeOptions;
/// let mut opts = UpgradeOptions::new();
/// opts.program("/opt/app/v2/server").env("APP_VERSION", "2").timeout(Duration::from_secs(5));
/// ```
#[derive(Debug, Clone, Default)]
pub struct UpgradeOptions {
    program: Option<PathBuf>,
    args: Option<Vec<OsString>>,
    env: Vec<(OsString, Option<OsString>)>,
    timeout: Option<Duration>,
}

impl UpgradeOptions {
    /// No change: the same program, arguments and environment, the default timeout.
    ///
    /// # Examples
    /// ```
    /// use forkexec::upgrade::{UpgradeOptions, Upgrader};
    /// // The upgrader's program: here /bin/false, which exits 1 before it is ready.
    /// let up = Upgrader::builder().inherit(false).program("/bin/false").build()?;
    /// up.ready()?;
    /// let err = up.upgrade_with(&UpgradeOptions::new()).unwrap_err();
    /// assert_eq!(err.state().unwrap().exit_code(), 1);
    /// assert!(!up.exit_requested()); // still serving
    /// # Ok::<(), forkexec::Error>(())
    /// ```
    pub fn new() -> UpgradeOptions {
        UpgradeOptions::default()
    }

    /// Runs this program instead of the upgrader's (by default this process's executable,
    /// see [`Builder::program`](super::Builder::program)). `argv[0]` is then the program
    /// as given, rather than this process's `argv[0]`.
    ///
    /// # Examples
    /// ```
    /// use forkexec::upgrade::{UpgradeOptions, Upgrader};
    /// let up = Upgrader::builder().inherit(false).build()?;
    /// up.ready()?;
    /// let mut opts = UpgradeOptions::new();
    /// opts.program("/bin/sh").args(["-c", "exit 3"]);
    /// assert_eq!(up.upgrade_with(&opts).unwrap_err().state().unwrap().exit_code(), 3);
    /// # Ok::<(), forkexec::Error>(())
    /// ```
    pub fn program(&mut self, path: impl AsRef<Path>) -> &mut UpgradeOptions {
        self.program = Some(path.as_ref().to_owned());
        self
    }

    /// Passes these arguments (after `argv[0]`) instead of this process's.
    ///
    /// # Examples
    /// ```
    /// use forkexec::upgrade::{UpgradeOptions, Upgrader};
    /// let up = Upgrader::builder().inherit(false).build()?;
    /// up.ready()?;
    /// let mut opts = UpgradeOptions::new();
    /// opts.program("/bin/sh").args(["-c", "exit $#", "sh", "one", "two"]);
    /// assert_eq!(up.upgrade_with(&opts).unwrap_err().state().unwrap().exit_code(), 2);
    /// # Ok::<(), forkexec::Error>(())
    /// ```
    pub fn args<I, S>(&mut self, args: I) -> &mut UpgradeOptions
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.args = Some(args.into_iter().map(|a| a.as_ref().to_owned()).collect());
        self
    }

    /// Sets an environment variable for the new process (the hand-over variables cannot
    /// be overridden: the upgrade sets them last).
    ///
    /// # Examples
    /// ```
    /// use forkexec::upgrade::{UpgradeOptions, Upgrader};
    /// let up = Upgrader::builder().inherit(false).build()?;
    /// up.ready()?;
    /// let mut opts = UpgradeOptions::new();
    /// opts.program("/bin/sh")
    ///     .args(["-c", "exit $APP_EXIT"])
    ///     .env("APP_EXIT", "5")
    ///     .env("LISTEN_FDS", "99"); // ignored: the upgrade's own value wins
    /// assert_eq!(up.upgrade_with(&opts).unwrap_err().state().unwrap().exit_code(), 5);
    /// opts.args(["-c", "exit $LISTEN_FDS"]);
    /// assert_eq!(up.upgrade_with(&opts).unwrap_err().state().unwrap().exit_code(), 0);
    /// # Ok::<(), forkexec::Error>(())
    /// ```
    pub fn env(&mut self, key: impl AsRef<OsStr>, val: impl AsRef<OsStr>) -> &mut UpgradeOptions {
        self.env
            .push((key.as_ref().to_owned(), Some(val.as_ref().to_owned())));
        self
    }

    /// Removes an environment variable from the new process's environment.
    ///
    /// # Examples
    /// ```
    /// use forkexec::upgrade::{UpgradeOptions, Upgrader};
    /// let up = Upgrader::builder().inherit(false).build()?;
    /// up.ready()?;
    /// let mut opts = UpgradeOptions::new();
    /// opts.program("/bin/sh")
    ///     .args(["-c", "test -z \"$APP_SECRET\" && exit 6"])
    ///     .env("APP_SECRET", "x")
    ///     .env_remove("APP_SECRET"); // the last change of a variable wins
    /// assert_eq!(up.upgrade_with(&opts).unwrap_err().state().unwrap().exit_code(), 6);
    /// # Ok::<(), forkexec::Error>(())
    /// ```
    pub fn env_remove(&mut self, key: impl AsRef<OsStr>) -> &mut UpgradeOptions {
        self.env.push((key.as_ref().to_owned(), None));
        self
    }

    /// The time the new process has to become ready (default: the upgrader's,
    /// [`Builder::upgrade_timeout`](super::Builder::upgrade_timeout)).
    ///
    /// # Examples
    /// ```
    /// use std::time::Duration;
    /// use forkexec::{ErrorKind, upgrade::{UpgradeOptions, Upgrader}};
    /// let up = Upgrader::builder().inherit(false).build()?;
    /// up.ready()?;
    /// let mut opts = UpgradeOptions::new();
    /// opts.program("/bin/sh").args(["-c", "exec sleep 30"]).timeout(Duration::from_millis(50));
    /// let err = up.upgrade_with(&opts).unwrap_err();
    /// assert_eq!(err.kind(), ErrorKind::Timeout); // and the new process was killed
    /// assert_eq!(err.state().unwrap().to_string(), "signal: killed");
    /// # Ok::<(), forkexec::Error>(())
    /// ```
    pub fn timeout(&mut self, d: Duration) -> &mut UpgradeOptions {
        self.timeout = Some(d);
        self
    }
}

impl Upgrader {
    /// [`upgrade_with`](Upgrader::upgrade_with) the default options: the same program
    /// (path), arguments and environment.
    ///
    /// # Errors
    /// As [`upgrade_with`](Upgrader::upgrade_with).
    ///
    /// # Examples
    /// ```
    /// let up = forkexec::upgrade::Upgrader::new()?;
    /// // Not ready yet: refused.
    /// assert!(up.upgrade().unwrap_err().to_string().contains("ready()"));
    /// # Ok::<(), forkexec::Error>(())
    /// ```
    ///
    /// # References
    /// As [`upgrade_with`](Upgrader::upgrade_with).
    pub fn upgrade(&self) -> Result<Upgraded> {
        self.upgrade_with(&UpgradeOptions::new())
    }

    /// Starts the new binary with every registered fd (fd 3 on, names in
    /// `LISTEN_FDNAMES`, `LISTEN_PID` its own pid) and a readiness pipe, with stdin, stdout
    /// and stderr shared, and waits for its [`ready`](Upgrader::ready) at most the timeout.
    ///
    /// On success this process is told to exit ([`exit_requested`](Upgrader::exit_requested),
    /// [`exit_fd`](Upgrader::exit_fd), [`wait_for_exit`](Upgrader::wait_for_exit)), systemd
    /// (if `NOTIFY_SOCKET` is set) is told `MAINPID=<new pid>`, and the new process is left
    /// running: it is reparented when this one exits. On failure the new process is killed
    /// and reaped, and this one goes on serving; another upgrade may be tried.
    ///
    /// # Errors
    /// - [`ErrorKind::InvalidInput`]: [`ready`](Upgrader::ready) was not called yet; an
    ///   upgrade is already in progress (in another thread); this process was upgraded
    ///   (or [`stop`](Upgrader::stop)ped) already and is exiting.
    /// - [`ErrorKind::ExitStatus`] (with [`Error::state`]): the new process exited before
    ///   it was ready.
    /// - [`ErrorKind::Timeout`] (with [`Error::state`]): it was not ready in time, and was
    ///   killed.
    /// - [`ErrorKind::Io`] (with [`Error::state`]): it closed the readiness pipe without
    ///   writing to it and did not exit soon after (2 s at most); it was killed. Also for a failing
    ///   `poll` or `read` of the pipe.
    /// - [`ErrorKind::Exec`] / [`ErrorKind::NotFound`] / [`ErrorKind::PermissionDenied`]:
    ///   it could not be started (see [`Cmd::start`](crate::Cmd::start)).
    ///
    /// # Examples
    /// ```
    /// use std::time::Duration;
    /// use forkexec::{ErrorKind, upgrade::{UpgradeOptions, Upgrader}};
    /// let up = Upgrader::new()?;
    /// let _l = up.listen_tcp("http", "127.0.0.1:0")?;
    /// up.ready()?;
    /// // A "new binary" that fails before ready(): the error says so, we keep serving.
    /// let mut opts = UpgradeOptions::new();
    /// opts.program("/bin/sh").args(["-c", "test \"$LISTEN_FDNAMES\" = http && exit 7"]);
    /// let err = up.upgrade_with(&opts).unwrap_err();
    /// assert_eq!(err.kind(), ErrorKind::ExitStatus);
    /// assert_eq!(err.state().unwrap().exit_code(), 7);
    /// // One that never becomes ready: killed at the timeout.
    /// opts.args(["-c", "exec sleep 30"]).timeout(Duration::from_millis(100));
    /// assert_eq!(up.upgrade_with(&opts).unwrap_err().kind(), ErrorKind::Timeout);
    /// // One that signals ready on the pipe it is told of: success.
    /// opts.args(["-c", "printf R >&$FORKEXEC_UPGRADE_READY_FD"]).timeout(Duration::from_secs(10));
    /// let done = up.upgrade_with(&opts)?;
    /// assert!(done.pid > 0 && up.exit_requested());
    /// // The new process is left running; this one has exited already: reap it.
    /// forkexec::raw::waitpid(done.pid, forkexec::raw::WaitOptions::empty())?;
    /// # Ok::<(), forkexec::Error>(())
    /// ```
    ///
    /// # References
    /// `execve(2)` and `fcntl(2)` (`FD_CLOEXEC`: which fds cross it), `sd_listen_fds(3)`,
    /// `pipe(7)`, `poll(2)`, `pidfd_open(2)`, `sd_notify(3)` (`MAINPID=`).
    pub fn upgrade_with(&self, opts: &UpgradeOptions) -> Result<Upgraded> {
        let started = Instant::now();
        if !self.is_ready() {
            return Err(Error::invalid(
                "upgrade: call ready() before upgrade(): this process must serve first",
            ));
        }
        if self.exit_requested() {
            return Err(Error::invalid(
                "upgrade: this process was upgraded (or stopped) already and is exiting",
            ));
        }
        if self.upgrading.swap(true, Ordering::SeqCst) {
            return Err(Error::invalid("upgrade: an upgrade is already in progress"));
        }
        struct InProgress<'a>(&'a AtomicBool);
        impl Drop for InProgress<'_> {
            fn drop(&mut self) {
                self.0.store(false, Ordering::SeqCst);
            }
        }
        let _in_progress = InProgress(&self.upgrading);

        let (mut cmd, ready_r) = self.command(opts)?;
        let mut child = cmd.start()?;
        // The child holds its copies now; the parent's (in `cmd`) must go, or the pipe
        // never reports the child's exit.
        drop(cmd);
        let timeout = opts.timeout.unwrap_or(self.timeout);
        let deadline = started.checked_add(timeout);
        let outcome = wait_ready(&child, &ready_r, deadline);
        match outcome {
            Ok(true) => {
                let pid = child.pid();
                self.exiting.store(true, Ordering::SeqCst);
                self.lock().registry.clear();
                self.close_exit_pipe();
                // Under systemd: the new process is the main one now. Best effort; the
                // upgrade has happened whatever systemd says.
                let _ = sd_notify(&format!("MAINPID={pid}\nREADY=1"));
                Ok(Upgraded {
                    pid,
                    ready_after: started.elapsed(),
                })
            }
            Ok(false) => Err(fail(&mut child, timeout, deadline)),
            Err(e) => {
                let _ = child.kill();
                let _ = child.wait();
                Err(e)
            }
        }
    }

    /// The command that starts the next generation, and the read end of its readiness pipe.
    fn command(&self, opts: &UpgradeOptions) -> Result<(Cmd, OwnedFd)> {
        let mut fds = Vec::new();
        let mut names = Vec::new();
        {
            let st = self.lock();
            for (name, fd) in &st.registry {
                let d = sock::dup(fd.as_fd())
                    .map_err(|e| io_error(e, format!("upgrade: duplicating {name:?}")))?;
                fds.push(d);
                names.push(name.as_str().to_owned());
            }
        }
        let (ready_r, ready_w) = crate::raw::pipe()?;
        let program = opts.program.as_deref().unwrap_or(&self.program);
        let mut cmd = Cmd::new(program);
        match self.args.first() {
            Some(a0) if opts.program.is_none() => {
                cmd.arg0(a0);
            }
            _ => {}
        }
        match &opts.args {
            Some(a) => cmd.args(a),
            None => cmd.args(self.args.iter().skip(1)),
        };
        cmd.stdin(Stdio::inherit())
            .stdout(Stdio::inherit())
            .stderr(Stdio::inherit());
        for (k, v) in &opts.env {
            match v {
                Some(v) => cmd.env(k, v),
                None => cmd.env_remove(k),
            };
        }
        for k in HANDOVER_VARS {
            cmd.env_remove(k);
        }
        let n = fds.len();
        cmd.env(ENV_LISTEN_FDS, n.to_string());
        if n > 0 {
            cmd.env(ENV_LISTEN_FDNAMES, names.join(":"));
        }
        cmd.env(ENV_READY_FD, (LISTEN_FDS_START as usize + n).to_string());
        cmd.env(
            ENV_GENERATION,
            self.generation.saturating_add(1).to_string(),
        );
        cmd.env_child_pid(ENV_LISTEN_PID);
        for fd in fds {
            cmd.extra_file(fd);
        }
        cmd.extra_file(ready_w);
        Ok((cmd, ready_r))
    }
}

/// Waits for the readiness byte: `Ok(true)` when it came, `Ok(false)` when the pipe closed
/// without it (the child exited or gave up its end) or the deadline passed.
fn wait_ready(child: &Child, ready_r: &OwnedFd, deadline: Option<Instant>) -> Result<bool> {
    let pidfd = child.process().pidfd().map_or(-1, |fd| fd.as_raw_fd());
    let mut p = [
        crate::sys::poll_in(ready_r.as_raw_fd()),
        crate::sys::poll_in(pidfd),
    ];
    // Ready, exited (the byte counts even when the child exited right after writing it),
    // or the deadline: look at the pipe either way.
    crate::sys::poll_until(&mut p, deadline).map_err(Error::os)?;
    read_ready_byte(ready_r)
}

/// Reads the readiness byte if it is there, without blocking when the pipe is still open.
fn read_ready_byte(ready_r: &OwnedFd) -> Result<bool> {
    let mut p = [crate::sys::poll_in(ready_r.as_raw_fd())];
    if crate::sys::poll_until(&mut p, Some(Instant::now())).map_err(Error::os)? == 0 {
        return Ok(false);
    }
    let mut b = [0u8; 1];
    loop {
        match rustix::io::read(ready_r, &mut b) {
            Ok(1) => return Ok(b[0] == READY_BYTE),
            Ok(_) => return Ok(false),
            Err(rustix::io::Errno::INTR) => continue,
            Err(e) => return Err(Error::os(e.raw_os_error())),
        }
    }
}

/// Ends a child that did not become ready: reaps it when it exited (or kills it first),
/// and says which happened.
fn fail(child: &mut Child, timeout: Duration, deadline: Option<Instant>) -> Error {
    let pid = child.pid();
    let now = Instant::now();
    let timed_out = deadline.is_some_and(|d| now >= d);
    // A child that closed the pipe is exiting, most likely: give it a moment to finish
    // (at most 2 s, and not much past the deadline).
    let grace = match deadline {
        _ if timed_out => Duration::ZERO,
        Some(d) => d
            .saturating_duration_since(now)
            .clamp(Duration::from_millis(50), Duration::from_secs(2)),
        None => Duration::from_secs(2),
    };
    if let Ok(Some(st)) = child.process().wait_timeout(grace) {
        return Error::new(
            ErrorKind::ExitStatus,
            format!("upgrade: the new process (pid {pid}) exited before it was ready: {st}"),
        )
        .with_state(st);
    }
    let _ = child.kill();
    let st = child.process().wait();
    let (kind, what) = if timed_out {
        (
            ErrorKind::Timeout,
            format!("was not ready within {timeout:?}"),
        )
    } else {
        (
            ErrorKind::Io,
            "closed its readiness pipe without becoming ready".to_string(),
        )
    };
    let mut e = Error::new(
        kind,
        format!("upgrade: the new process (pid {pid}) {what}; it was killed"),
    );
    if let Ok(st) = st {
        e = e.with_state(st);
    }
    e
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::Ordering;
    use std::time::{Duration, Instant};

    use super::UpgradeOptions;
    use crate::ErrorKind;
    use crate::upgrade::Upgrader;

    #[test]
    fn one_upgrade_at_a_time() {
        let up = std::sync::Arc::new(Upgrader::builder().inherit(false).build().unwrap());
        up.ready().unwrap();
        let mut slow = UpgradeOptions::new();
        slow.program("/bin/sh")
            .args(["-c", "exec sleep 30"])
            .timeout(Duration::from_millis(1500));
        let u = up.clone();
        let t = std::thread::spawn(move || u.upgrade_with(&slow));
        let t0 = Instant::now();
        while !up.upgrading.load(Ordering::SeqCst) {
            assert!(t0.elapsed() < Duration::from_secs(10));
            std::thread::sleep(Duration::from_millis(1));
        }
        let e = up.upgrade().unwrap_err();
        assert!(e.to_string().contains("already in progress"), "{e}");
        let e = t.join().unwrap().unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Timeout, "{e}");
        assert_eq!(e.state().unwrap().to_string(), "signal: killed");
        assert!(!up.exit_requested());
        // Free again after the failure.
        let mut quick = UpgradeOptions::new();
        quick.program("/bin/sh").args(["-c", "exit 4"]);
        assert_eq!(
            up.upgrade_with(&quick)
                .unwrap_err()
                .state()
                .unwrap()
                .exit_code(),
            4
        );
    }
}
