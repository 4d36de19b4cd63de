//! Preparing a [`Cmd`](crate::Cmd) (the `PATH` lookup, the child's environment, the plan) and
//! starting it: `start`, `status`, `run`, `exec`.

use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::capture::Capture;
use crate::error::{Error, ErrorKind, Result, Stage};
use crate::lookpath::{look_path_in, searched_by_child};
use crate::process::Process;
use crate::spawn::{ChildFd, ExecPlan, Scratch, Strategy, path_cstring};
use crate::status::ProcessState;
use crate::sys::cstr::{CStringArray, merge_env};
use crate::{spawn, sys};

use super::timer::{Cancel, Watcher};
use super::{
    Child, ChildStderr, ChildStdin, ChildStdout, Cmd, Copiers, CopyJob, Io, Prepared, Spec, Stdio,
    StdioKind, dev_null,
};

impl Cmd {
    /// The child's stdio and extra files, for a change: the fd plan kept for `status` no
    /// longer holds.
    pub(super) fn io_mut(&mut self) -> &mut Io {
        if let Some(p) = self.spec.prepared_mut() {
            p.direct = false;
        }
        &mut self.io
    }

    /// The prepared plan, built at the first start after a change.
    #[inline]
    pub(super) fn prepare(&mut self) -> Result<&mut Prepared> {
        self.spec.prepare(Spec::build)
    }
}

impl Prepared {
    /// A spawn error as the parent's lookup would have reported it, when the child did the
    /// `PATH` search: a search that found nothing is looked up again here, by Go's rules,
    /// for Go's error (`executable file not found in $PATH`...); a candidate whose exec
    /// failed otherwise is named in the child's error.
    fn search_error(&self, e: Error) -> Error {
        match self.plan.search() {
            Some((name, path_var)) if e.stage() == Some(Stage::Exec) => {
                match look_path_in(name, Some(path_var)) {
                    Err(lookup) => lookup,
                    Ok(found) => e.with_path(found),
                }
            }
            _ => e,
        }
    }
}

impl Spec {
    pub(super) fn build(&self) -> Result<Prepared> {
        if self.program.is_empty() {
            return Err(Error::invalid("empty program name"));
        }
        let env = self.child_env()?;
        let mut search = None;
        let path = if self.program.as_bytes().contains(&b'/') {
            Some(PathBuf::from(&self.program))
        } else {
            // The PATH the child will see; when its environment has none (say after
            // `env_clear`), the parent's, as `execvp` and Go's `exec.Command` would use.
            let child_path = env
                .as_ref()
                .and_then(|pairs| pairs.iter().rev().find(|(k, _)| k == "PATH"))
                .map(|(_, v)| v.clone());
            let path_var = child_path.or_else(|| std::env::var_os("PATH"));
            match path_var {
                // The child execs each candidate in turn, as `execvp` does: no lookup here.
                // The outcome is the one of Go's rules (see `child_can_search`).
                Some(p) if self.child_can_search(&p) => {
                    search = Some(p);
                    None
                }
                path_var => Some(match look_path_in(&self.program, path_var.as_deref()) {
                    Ok(p) => p,
                    Err(e) if e.kind() == ErrorKind::Dot && self.allow_dot => {
                        e.path().map(Path::to_owned).ok_or(e)?
                    }
                    Err(e) => return Err(e),
                }),
            }
        };
        let argv = CStringArray::from_argv(self.arg0(), &self.args)?;
        let program = match (&path, &search) {
            (Some(p), _) => path_cstring(p, "program path")?,
            // The first candidate stands for the program in the plan (its errors are
            // rewritten by `search_error`).
            (None, _) => path_cstring(Path::new(&self.program), "program path")?,
        };
        let mut plan = ExecPlan::from_parts(program, argv);
        plan.set_search(search);
        if let Some(pairs) = env {
            plan.set_env(Some(CStringArray::from_env(pairs)?));
        }
        if let Some(dir) = &self.dir {
            let c = path_cstring(dir, "working directory")?;
            // Checked here, before any fork, unless the child changes root first (then
            // only the child can tell, and reports a Chdir error).
            match sys::stat(&c) {
                _ if self.sys.chroot.is_some() => {}
                Ok(st) if st.st_mode & libc::S_IFMT == libc::S_IFDIR => {}
                Ok(_) => {
                    return Err(Error::from_errno(Stage::Chdir, libc::ENOTDIR).with_path(dir));
                }
                Err(e) => return Err(Error::from_errno(Stage::Chdir, e).with_path(dir)),
            }
            plan.set_cwd(Some(c));
        }
        let mut sys = self.sys.clone();
        if self.cancel_group && !sys.setsid {
            match sys.process_group {
                None => sys.process_group = Some(0),
                Some(0) => {}
                Some(g) => {
                    return Err(Error::invalid(format!(
                        "cancel_process_group needs the child to lead its own group, not join {g}"
                    )));
                }
            }
        }
        *plan.sys_mut() = sys;
        plan.set_pre_exec(spawn::PreExecHooks(self.pre_exec.clone()));
        // Compiled (and checked) here, once, so that a bad attribute fails every start the
        // same way before anything else is created.
        plan.spec()?;
        Ok(Prepared {
            plan,
            path,
            scratch: Scratch::new(),
            direct: false,
        })
    }

    /// The child's environment when it differs from the parent's; `None` to inherit as is.
    pub(super) fn child_env(&self) -> Result<Option<Vec<(OsString, OsString)>>> {
        let pwd = match &self.dir {
            Some(d) if !self.env_clear => {
                let abs = if d.is_absolute() {
                    d.clone()
                } else {
                    logical_cwd()?.join(d)
                };
                // POSIX: PWD is an absolute path without `.` or `..` (Go: filepath.Abs).
                Some(clean_absolute(&abs).into_os_string())
            }
            _ => None,
        };
        if !self.env_clear && self.env_changes.is_empty() && pwd.is_none() {
            return Ok(None);
        }
        let base = if self.env_clear {
            Vec::new()
        } else {
            parent_env()
        };
        let pwd_set = self.env_changes.iter().any(|(k, _)| k == "PWD");
        let pwd = pwd
            .filter(|_| !pwd_set)
            .map(|p| (OsString::from("PWD"), Some(p)));
        let changes = pwd.into_iter().chain(self.env_changes.iter().cloned());
        merge_env(base, changes).map(Some)
    }

    /// Whether the child can do the `PATH` search itself (as `execvp` does), with the same
    /// outcome as Go's lookup in the parent: every `PATH` element is absolute (a relative
    /// one could make Go's `ErrDot` the answer), the strategy is not `PosixSpawn` (which
    /// runs the C library's code), nothing in the child changes what a path names or who
    /// may execute it (`chroot`, credentials, `pre_exec` code), and a child that finds
    /// nothing leaves nothing behind (no terminal given to it or taken from it). Then the parent makes no system call
    /// for the lookup; a failed search is looked up again in the parent to report Go's
    /// error (`search_error`).
    fn child_can_search(&self, path_var: &OsStr) -> bool {
        // A child that fails to find its program must leave nothing changed that a
        // parent lookup would have left alone: no terminal handed over or given up, no
        // caller's code run for nothing.
        self.strategy != Strategy::PosixSpawn
            && self.sys.chroot.is_none()
            && self.sys.credential.is_none()
            && !self.sys.foreground
            && self.sys.ctty.is_none()
            && !self.sys.noctty
            && self.pre_exec.is_empty()
            && searched_by_child(&self.program, path_var)
    }

    /// argv[0]: `arg0`, or the program.
    fn arg0(&self) -> &OsStr {
        self.arg0.as_deref().unwrap_or(&self.program)
    }

    /// argv: `arg0` (or the program) and the arguments.
    pub(super) fn argv(&self) -> Vec<&OsStr> {
        std::iter::once(self.arg0())
            .chain(self.args.iter().map(OsString::as_os_str))
            .collect()
    }
}

impl Cmd {
    /// The resolved program path (after the `PATH` lookup), preparing the command if needed.
    ///
    /// # Errors
    /// As [`start`](Cmd::start) before the spawn: lookup and input errors.
    ///
    /// # Examples
    /// ```
    /// let mut cmd = forkexec::Cmd::new("sh");
    /// assert!(cmd.resolved_path()?.is_absolute());
    /// # Ok::<(), forkexec::Error>(())
    /// ```
    pub fn resolved_path(&mut self) -> Result<&Path> {
        let program = self.spec.program.clone();
        let prepared = self.prepare()?;
        if prepared.path.is_none() {
            // The child searches PATH itself: look it up here, by the same rules.
            let path_var = prepared.plan.search().map(|(_, p)| p);
            prepared.path = Some(look_path_in(&program, path_var)?);
        }
        Ok(prepared.path.as_deref().expect("set above"))
    }

    /// Starts the child (Go's `Start`).
    ///
    /// # Errors
    /// [`ErrorKind::InvalidInput`](crate::ErrorKind::InvalidInput) (NUL bytes, `=` in a key, empty program),
    /// [`ErrorKind::NotFound`](crate::ErrorKind::NotFound) / [`ErrorKind::Dot`](crate::ErrorKind::Dot) from the `PATH` lookup or a missing
    /// directory, [`ErrorKind::PermissionDenied`](crate::ErrorKind::PermissionDenied) / [`ErrorKind::Exec`](crate::ErrorKind::Exec) from the child's
    /// failing step, [`ErrorKind::Unsupported`](crate::ErrorKind::Unsupported) when the strategy cannot express the
    /// attributes, [`ErrorKind::Io`](crate::ErrorKind::Io) when pipes or processes cannot be created. Nothing is
    /// left behind on error: no child, no fd.
    ///
    /// # Examples
    /// ```
    /// use std::io::{Read, Write};
    /// use forkexec::{Cmd, Stdio};
    /// let mut child = Cmd::new("tr").arg("a-z").arg("A-Z")
    ///     .stdin(Stdio::piped()).stdout(Stdio::piped()).start()?;
    /// child.stdin.take().unwrap().write_all(b"shout")?;
    /// let mut out = String::new();
    /// child.stdout.take().unwrap().read_to_string(&mut out)?;
    /// assert_eq!(out, "SHOUT");
    /// assert!(child.wait()?.success());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[doc(alias("Start", "spawn"))]
    pub fn start(&mut self) -> Result<Child> {
        let r = self.start_unnamed();
        r.map_err(|e| e.with_program(&self.spec.program))
    }

    pub(super) fn start_unnamed(&mut self) -> Result<Child> {
        let (stdin, stdout, stderr) = (
            self.io.stdin.clone(),
            self.io.stdout.clone(),
            self.io.stderr.clone(),
        );
        self.start_with(&stdin, &stdout, &stderr, false, false)
    }

    /// Starts the child with these stdio settings. `internal`: the caller (`output`) keeps
    /// the child to itself and reaps it, so it needs no pidfd unless a timeout or a wait
    /// delay has to watch it; a `Child` handed to the user always has one where the kernel
    /// allows, so its `Process` can be polled and signalled safely.
    pub(super) fn start_with(
        &mut self,
        stdin: &Stdio,
        stdout: &Stdio,
        stderr: &Stdio,
        internal: bool,
        inline_writers: bool,
    ) -> Result<Child> {
        let strategy = self.spec.strategy;
        let (timeout, wait_delay) = (self.timeout, self.wait_delay);
        let cancel = Cancel {
            signal: self.cancel_signal,
            group: self.spec.cancel_group,
            func: self.cancel_fn.clone(),
        };
        if timeout == Some(Duration::ZERO) {
            // A deadline already past: nothing is started (Go's Start returns the context's
            // error).
            return Err(Error::new(
                ErrorKind::Timeout,
                "timed out before the start (a timeout of zero)",
            ));
        }
        self.prepare()?;

        let mut ends: [Option<OwnedFd>; 3] = [None, None, None];
        let mut child_ends: [Option<OwnedFd>; 3] = [None, None, None];
        let mut copies: Vec<CopyJob> = Vec::new();
        for (i, s) in [stdin, stdout, stderr].into_iter().enumerate() {
            // Stdout and stderr to the same writer: one pipe and one copier for both, so the
            // order of the child's writes is kept (Go does the same).
            if let (2, StdioKind::Writer(a), StdioKind::Writer(b)) = (i, &stdout.0, &s.0) {
                if Arc::ptr_eq(a, b) {
                    if let Some(w) = &child_ends[1] {
                        child_ends[2] = Some(w.try_clone().map_err(Error::from_io)?);
                        continue;
                    }
                }
            }
            match &s.0 {
                StdioKind::Piped | StdioKind::Reader(_) | StdioKind::Writer(_) => {
                    let (r, w) = crate::sys::pipe::pipe()?;
                    let (mine, theirs) = if i == 0 { (w, r) } else { (r, w) };
                    child_ends[i] = Some(theirs);
                    match &s.0 {
                        StdioKind::Reader(rd) => copies.push(CopyJob::In(rd.clone(), mine)),
                        // The caller drains it into the writer in its own thread.
                        StdioKind::Writer(_) if inline_writers => ends[i] = Some(mine),
                        StdioKind::Writer(wr) => copies.push(CopyJob::Out(wr.clone(), mine)),
                        _ => ends[i] = Some(mine),
                    }
                }
                _ => {}
            }
        }
        let mut inline = [ChildFd::Inherit; 8];
        let mut heap = Vec::new();
        let fds = child_fds(
            &mut inline,
            &mut heap,
            [stdin, stdout, stderr],
            &child_ends,
            &self.io.extra_files,
        )?;
        let prepared = self.spec.prepared_mut().expect("prepared above");
        prepared.direct = false;
        // Internally, the pidfd serves the timeout watcher and the wait delay; a child with
        // neither is only ever signalled before it is reaped, when its pid cannot be reused.
        let want_pidfd = !internal || timeout.is_some() || wait_delay.is_some();
        let spawned = spawn::spawn_with(
            &prepared.plan,
            fds,
            strategy,
            &mut prepared.scratch,
            want_pidfd,
        )
        .map_err(|e| prepared.search_error(e))?;
        drop(child_ends);
        let process = Process::from_spawned(spawned);
        let [i, o, e] = ends;
        // A thread that cannot be created must not leave the started child behind.
        let abandon = |process: Process, e: Error| -> Error {
            let _ = process.kill();
            let _ = process.wait();
            e
        };
        let mut deadline = timeout.and_then(|t| Instant::now().checked_add(t));
        let mut watcher = None;
        if let (Some(d), Some(pidfd)) = (deadline, process.pidfd()) {
            match Watcher::start(process.pid(), pidfd, d, &cancel, wait_delay) {
                Ok(w) => watcher = Some(w),
                Err(e) => return Err(abandon(process, e)),
            }
            // The watcher enforces it from now on; waits need not.
            deadline = None;
        }
        let copiers = if copies.is_empty() {
            None
        } else {
            match Copiers::start(copies) {
                Ok(c) => Some(c),
                Err(e) => return Err(abandon(process, e)),
            }
        };
        Ok(Child {
            process,
            stdin: i.map(|f| ChildStdin(File::from(f))),
            stdout: o.map(|f| ChildStdout(File::from(f))),
            stderr: e.map(|f| ChildStderr(File::from(f))),
            copiers,
            deadline,
            wait_delay,
            cancel,
            timed_out: false,
            watcher,
            waited: false,
            cancel_error: None,
        })
    }

    /// Replaces this process with the command (std's `CommandExt::exec`, Go's
    /// `syscall.Exec`): the program is looked up as for [`start`](Cmd::start), and this
    /// process takes the steps a child would (stdio, extra files, directory, session,
    /// credentials, limits, signal mask), then `execve`. It returns only on failure.
    ///
    /// The stdio settings apply as for a child, **including the default null device**: say
    /// [`Stdio::inherit`](crate::Stdio::inherit) to keep this process's stdin, stdout or stderr. Pipes and
    /// readers/writers need a second process and are refused, as are clone namespaces (use
    /// [`unshare`](Cmd::unshare)). When the exec fails after a step changed this process,
    /// the change stays, as with std: its fds (moved, others marked close-on-exec),
    /// directory, session and group, umask, limits, namespaces, cgroup, pdeathsig, the
    /// calling thread's credentials and signal mask, `SIGPIPE` back at its default, and
    /// with [`IgnoredSignals::Reset`](crate::IgnoredSignals::Reset) every disposition.
    ///
    /// # Errors
    /// The returned error: [`ErrorKind::InvalidInput`](crate::ErrorKind::InvalidInput) for a pipe, reader or writer as
    /// stdio; otherwise as [`start`](Cmd::start) (the failing step and errno).
    ///
    /// # Examples
    /// ```
    /// use forkexec::{Cmd, ErrorKind};
    /// // A failed exec returns; a successful one never does (try it in a child process).
    /// let err = Cmd::new("/no/such/program").exec();
    /// assert_eq!(err.kind(), ErrorKind::NotFound);
    /// let err = Cmd::new("true").stdout(forkexec::Stdio::piped()).exec();
    /// assert_eq!(err.kind(), ErrorKind::InvalidInput);
    /// ```
    ///
    /// # References
    /// `execve(2)`.
    #[doc(alias("Exec", "execve", "execvp"))]
    pub fn exec(&mut self) -> Error {
        let e = self.exec_unnamed();
        e.with_program(&self.spec.program)
    }

    pub(super) fn exec_unnamed(&mut self) -> Error {
        let (stdin, stdout, stderr) = (
            self.io.stdin.clone(),
            self.io.stdout.clone(),
            self.io.stderr.clone(),
        );
        for s in [&stdin, &stdout, &stderr] {
            if matches!(
                s.0,
                StdioKind::Piped | StdioKind::Reader(_) | StdioKind::Writer(_)
            ) {
                return Error::invalid(
                    "exec: a pipe, reader or writer needs a second process; this one is replaced",
                );
            }
        }
        if let Err(e) = self.prepare() {
            return e;
        }
        let child_ends: [Option<OwnedFd>; 3] = [None, None, None];
        let mut inline = [ChildFd::Inherit; 8];
        let mut heap = Vec::new();
        let fds = match child_fds(
            &mut inline,
            &mut heap,
            [&stdin, &stdout, &stderr],
            &child_ends,
            &self.io.extra_files,
        ) {
            Ok(f) => f,
            Err(e) => return e,
        };
        let prepared = self.spec.prepared_mut().expect("prepared above");
        prepared.search_error(spawn::exec_here(&prepared.plan, fds))
    }

    /// Starts the child and waits for it; `Ok` whatever its exit status (std's `status`).
    ///
    /// # Errors
    /// As [`start`](Cmd::start) and [`Child::wait`](crate::Child::wait) (timeouts, wait delay).
    ///
    /// # Examples
    /// ```
    /// let st = forkexec::Cmd::new("sh").args(["-c", "exit 4"]).status()?;
    /// assert_eq!(st.exit_code(), 4);
    /// # Ok::<(), forkexec::Error>(())
    /// ```
    pub fn status(&mut self) -> Result<ProcessState> {
        let r = self.status_unnamed();
        r.map_err(|e| e.with_program(&self.spec.program))
    }

    pub(super) fn status_unnamed(&mut self) -> Result<ProcessState> {
        let no_pipe =
            |s: &Stdio| matches!(s.0, StdioKind::Null | StdioKind::Inherit | StdioKind::Fd(_));
        if self.timeout.is_none()
            && no_pipe(&self.io.stdin)
            && no_pipe(&self.io.stdout)
            && no_pipe(&self.io.stderr)
        {
            return self.status_direct();
        }
        let writer = |s: &Stdio| matches!(s.0, StdioKind::Writer(_));
        if writer(&self.io.stdout) || writer(&self.io.stderr) {
            return self.status_writers();
        }
        self.start()?.wait()
    }

    /// [`status`](Cmd::status) with stdout or stderr going to the caller's writers: this
    /// thread, which would only wait anyway, reads the pipes and hands each chunk to the
    /// writer, so no copier thread is started (a reader on stdin still gets one).
    fn status_writers(&mut self) -> Result<ProcessState> {
        let (stdin, stdout, stderr) = (
            self.io.stdin.clone(),
            self.io.stdout.clone(),
            self.io.stderr.clone(),
        );
        let mut child = self.start_with(&stdin, &stdout, &stderr, true, true)?;
        // As `wait`: the child's stdin pipe (if any) is closed, or a reading child never ends.
        drop(child.stdin.take());
        let o = child.stdout.take().map(OwnedFd::from);
        let e = child.stderr.take().map(OwnedFd::from);
        // A piped stream beside a writer has no reader here: read and dropped, so the
        // child never blocks on it and nothing is kept.
        let sink = |s: &Stdio| match &s.0 {
            StdioKind::Writer(w) => Capture::forward(w.clone()),
            _ => Capture::forward(Arc::new(Mutex::new(std::io::sink()))),
        };
        let ([mut o, mut e], delay_hit) = child.drain(o, e, [sink(&stdout), sink(&stderr)])?;
        let st = child.finish(delay_hit);
        // The writers are flushed whatever the end; a writer's error, as a copy thread's,
        // comes after the wait, with the state (a closed reader of ours, EPIPE, is none).
        let sink_errs = [o.end_sink(), e.end_sink()];
        let st = st?;
        for err in sink_errs.into_iter().flatten() {
            if err.kind() != std::io::ErrorKind::BrokenPipe {
                return Err(Error::from_io(err).with_state(st));
            }
        }
        Ok(st)
    }

    /// [`status`](Cmd::status) for a child with no pipe and no timeout: nothing to copy,
    /// nothing to watch and nobody who could signal it, so it is spawned and reaped here
    /// without a [`Child`](crate::Child), a [`Process`](crate::Process) or a pidfd. It is reaped by pid (as std and Go
    /// do), which stays its own until this call reaps it, unless some other code of the
    /// process reaps any child (`waitpid(-1)`).
    pub(super) fn status_direct(&mut self) -> Result<ProcessState> {
        let (n_fds, strategy) = (3 + self.io.extra_files.len(), self.spec.strategy);
        let prepared = self.prepare()?;
        if prepared.direct {
            // The same fds as the last time: every source is still open (the command owns
            // them, or it is the shared /dev/null).
            let ops = prepared.scratch.ops();
            let spawned = spawn::spawn_planned(&prepared.plan, ops, n_fds, strategy, false)
                .map_err(|e| prepared.search_error(e))?;
            return crate::process::reap(spawned.pid, None);
        }
        let mut inline = [ChildFd::Inherit; 8];
        let mut heap = Vec::new();
        let none = [None, None, None];
        let fds = child_fds(
            &mut inline,
            &mut heap,
            [&self.io.stdin, &self.io.stdout, &self.io.stderr],
            &none,
            &self.io.extra_files,
        )?;
        let prepared = self.spec.prepared_mut().expect("prepared above");
        let spawned =
            spawn::spawn_with(&prepared.plan, fds, strategy, &mut prepared.scratch, false)
                .map_err(|e| prepared.search_error(e))?;
        prepared.direct = true;
        crate::process::reap(spawned.pid, None)
    }

    /// Starts the child and waits for it; an unsuccessful exit is an
    /// [`ErrorKind::ExitStatus`](crate::ErrorKind::ExitStatus) error carrying the state (Go's `Run`).
    ///
    /// # Errors
    /// As [`status`](Cmd::status), plus [`ErrorKind::ExitStatus`](crate::ErrorKind::ExitStatus).
    ///
    /// # Examples
    /// ```
    /// let err = forkexec::Cmd::new("false").run().unwrap_err();
    /// assert_eq!(err.to_string(), "exit status 1");
    /// assert_eq!(err.state().unwrap().exit_code(), 1);
    /// # Ok::<(), forkexec::Error>(())
    /// ```
    #[doc(alias = "Run")]
    pub fn run(&mut self) -> Result<()> {
        let r = self.run_unnamed();
        r.map_err(|e| e.with_program(&self.spec.program))
    }

    pub(super) fn run_unnamed(&mut self) -> Result<()> {
        let st = self.status()?;
        if st.success() {
            Ok(())
        } else {
            Err(Error::exit_status(st))
        }
    }
}

/// The child's fds: 0-2 from `stdio` (or the child end of their pipe), then the extra files;
/// in `inline` when they fit (no allocation), else in `heap`.
pub(super) fn child_fds<'a, 'b>(
    inline: &'b mut [ChildFd<'a>; 8],
    heap: &'b mut Vec<ChildFd<'a>>,
    stdio: [&'a Stdio; 3],
    child_ends: &'a [Option<OwnedFd>; 3],
    extra: &'a [Arc<OwnedFd>],
) -> Result<&'b mut [ChildFd<'a>]> {
    let n = 3 + extra.len();
    let fds: &mut [ChildFd<'a>] = if n <= inline.len() {
        &mut inline[..n]
    } else {
        heap.resize(n, ChildFd::Inherit);
        heap
    };
    for (i, s) in stdio.into_iter().enumerate() {
        fds[i] = match (&s.0, &child_ends[i]) {
            (_, Some(fd)) => ChildFd::Fd(fd.as_fd()),
            (StdioKind::Null, _) => ChildFd::Fd(dev_null()?),
            (StdioKind::Inherit, _) => ChildFd::Inherit,
            (StdioKind::Fd(fd), _) => ChildFd::Fd(fd.as_fd()),
            _ => unreachable!("pipes have a child end"),
        };
    }
    for (i, f) in extra.iter().enumerate() {
        fds[3 + i] = ChildFd::Fd(f.as_fd());
    }
    Ok(fds)
}

/// The current directory as the user reached it (Go's `os.Getwd`): `$PWD` when it is
/// absolute and names the same directory as `.` (through symbolic links, say), else the
/// physical path.
pub(super) fn logical_cwd() -> Result<PathBuf> {
    use std::os::unix::fs::MetadataExt;
    if let Some(pwd) = std::env::var_os("PWD").map(PathBuf::from) {
        if pwd.is_absolute() {
            if let (Ok(a), Ok(b)) = (std::fs::metadata(&pwd), std::fs::metadata(".")) {
                if (a.dev(), a.ino()) == (b.dev(), b.ino()) {
                    return Ok(pwd);
                }
            }
        }
    }
    std::env::current_dir().map_err(Error::from_io)
}

/// `p` (absolute) without `.` and `..` components, lexically (Go's `filepath.Clean`).
pub(super) fn clean_absolute(p: &Path) -> PathBuf {
    use std::path::Component;
    let mut out = PathBuf::from("/");
    for c in p.components() {
        match c {
            Component::ParentDir => {
                out.pop();
            }
            Component::Normal(n) => out.push(n),
            Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
        }
    }
    out
}

pub(super) fn parent_env() -> Vec<OsString> {
    std::env::vars_os()
        .map(|(k, v)| {
            let mut e = k;
            e.push("=");
            e.push(v);
            e
        })
        .collect()
}
