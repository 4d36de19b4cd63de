//! The workloads: what one spawn + wait of each row does.

use std::ffi::OsString;
use std::io::{Read, Write};
use std::os::fd::FromRawFd;
use std::os::raw::c_int;
use std::os::unix::process::ExitStatusExt;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use forkexec::raw::{ExecPlan, WaitOptions, fork_exec, waitpid};
use forkexec::{Cmd, Stdio};

use crate::BoxError;
use crate::floor::{RawArgs, last_os_error, libc_clone, libc_wait};
use crate::peers::Peers;
use crate::rows::Row;

/// The floor child's stack (it only calls `execve` and `_exit`).
const FLOOR_STACK: usize = 64 * 1024;

/// Everything a spawn needs that the threads share, built once.
pub struct Ctx {
    pub plan: ExecPlan,
    pub program: OsString,
    pub args: Vec<OsString>,
    pub env: Vec<(OsString, OsString)>,
    pub raw: RawArgs,
    /// The bare name the `cmd_name` and `std_name` rows start (looked up on `PATH`), when
    /// it finds the same file as `program`.
    pub name: Option<OsString>,
    /// The Go and CPython peers that could be prepared (`--peers`).
    pub peers: Option<Peers>,
}

/// What each spawning thread owns: its own `Cmd`s (a `Cmd` starts through `&mut self`) and
/// its own stack for the floor child.
pub struct Worker {
    pub cmd: Cmd,
    pub cmd_reset_all: Cmd,
    pub cmd_output: Cmd,
    pub stack: Vec<u8>,
}

impl Worker {
    pub fn new(ctx: &Ctx) -> Worker {
        let make = || {
            let mut c = Cmd::new(&ctx.program);
            c.args(&ctx.args).envs(ctx.env.iter().map(|(k, v)| (k, v)));
            c
        };
        let mut keep = make();
        keep.ignored_signals(forkexec::IgnoredSignals::Reset);
        Worker {
            cmd: make(),
            cmd_reset_all: keep,
            cmd_output: make(),
            stack: vec![0; FLOOR_STACK],
        }
    }
}

/// A std `Command` for `program` with the run's arguments and variables.
pub fn std_command(ctx: &Ctx, program: &OsString) -> Command {
    let mut c = Command::new(program);
    c.args(&ctx.args).envs(ctx.env.iter().map(|(k, v)| (k, v)));
    c
}

/// A new `Cmd` for `program` with the run's arguments and variables, as a program that
/// runs one job after another writes it.
fn new_cmd(ctx: &Ctx, program: &OsString) -> Cmd {
    let mut c = Cmd::new(program);
    c.args(&ctx.args).envs(ctx.env.iter().map(|(k, v)| (k, v)));
    c
}

/// An in-memory writer (a `Vec`) that also counts what it was given, so the row can report
/// the bytes captured once the writer is out of reach.
struct VecSink {
    buf: Vec<u8>,
    total: Arc<AtomicUsize>,
}

impl Write for VecSink {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(b);
        self.total.fetch_add(b.len(), Ordering::Relaxed);
        Ok(b.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// One spawn of `row` and the wait for it: the child's raw wait status and how many bytes
/// of output were captured.
pub fn spawn_wait(ctx: &Ctx, w: &mut Worker, row: Row) -> Result<(i32, usize), BoxError> {
    match row {
        Row::Forkexec(s) => {
            let child = fork_exec(&ctx.plan, &[], s)?;
            let (_, status) = waitpid(child.pid, WaitOptions::empty())?
                .ok_or("waitpid returned no status without WNOHANG")?;
            Ok((status.to_raw(), 0))
        }
        Row::Cmd => Ok((w.cmd.status()?.wait_status().to_raw(), 0)),
        Row::CmdResetAll => Ok((w.cmd_reset_all.status()?.wait_status().to_raw(), 0)),
        Row::Std => Ok((std_command(ctx, &ctx.program).status()?.into_raw(), 0)),
        Row::CmdName | Row::StdName => {
            let name = ctx.name.as_ref().ok_or("no bare name for this program")?;
            let status = if row == Row::CmdName {
                new_cmd(ctx, name).status()?.wait_status().to_raw()
            } else {
                std_command(ctx, name).status()?.into_raw()
            };
            Ok((status, 0))
        }
        Row::LibcPosixSpawn => {
            let mut pid: libc::pid_t = 0;
            // SAFETY: path, argv and envp are NUL-terminated strings in NULL-terminated
            // arrays that outlive the call; NULL file actions and attributes mean defaults.
            let r = unsafe {
                libc::posix_spawn(
                    &mut pid,
                    ctx.raw.path.as_ptr(),
                    std::ptr::null(),
                    std::ptr::null(),
                    ctx.raw.argv.as_ptr().cast(),
                    ctx.raw.envp.cast(),
                )
            };
            if r != 0 {
                return Err(
                    format!("posix_spawn: {}", std::io::Error::from_raw_os_error(r)).into(),
                );
            }
            Ok((libc_wait(pid)?, 0))
        }
        Row::LibcFork => {
            let (path, argv, envp) = (ctx.raw.path.as_ptr(), ctx.raw.argv.as_ptr(), ctx.raw.envp);
            // SAFETY: in the child only execve and _exit run (both async-signal-safe, so
            // this holds with other threads too), on pointers prepared before the fork, so
            // no lock, allocation or Rust state is touched there.
            let pid = unsafe { libc::fork() };
            if pid == 0 {
                // SAFETY: see above; `_exit` never returns, so the child never gets back here.
                unsafe {
                    libc::execve(path, argv, envp);
                    libc::_exit(127)
                }
            }
            if pid < 0 {
                return Err(last_os_error("fork"));
            }
            Ok((libc_wait(pid)?, 0))
        }
        Row::LibcClone => {
            let pid = libc_clone(&mut w.stack, &ctx.raw, -1)?;
            Ok((libc_wait(pid)?, 0))
        }
        Row::CmdOutput => {
            let out = w.cmd_output.output()?;
            Ok((0, out.len()))
        }
        Row::CmdWriters => {
            let stdout = Arc::new(AtomicUsize::new(0));
            let sink = |total: &Arc<AtomicUsize>| {
                Stdio::from_writer(VecSink {
                    buf: Vec::new(),
                    total: Arc::clone(total),
                })
            };
            let status = new_cmd(ctx, &ctx.program)
                .stdout(sink(&stdout))
                .stderr(sink(&Arc::new(AtomicUsize::new(0))))
                .status()?;
            Ok((
                status.wait_status().to_raw(),
                stdout.load(Ordering::Relaxed),
            ))
        }
        Row::StdOutput => {
            let out = std_command(ctx, &ctx.program).output()?;
            Ok((out.status.into_raw(), out.stdout.len()))
        }
        Row::LibcCloneOutput => {
            let mut fds = [0 as c_int; 2];
            // SAFETY: `fds` is a valid out-array of two ints.
            if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } < 0 {
                return Err(last_os_error("pipe2"));
            }
            // SAFETY: pipe2 just returned these two fds; nothing else owns them.
            let (mut r, wr) = unsafe {
                (
                    std::fs::File::from_raw_fd(fds[0]),
                    std::fs::File::from_raw_fd(fds[1]),
                )
            };
            let pid = libc_clone(&mut w.stack, &ctx.raw, fds[1]);
            drop(wr);
            let pid = pid?;
            let mut out = Vec::new();
            let read = r.read_to_end(&mut out);
            let status = libc_wait(pid)?;
            read?;
            Ok((status, out.len()))
        }
        Row::Go | Row::Python | Row::GoOutput | Row::PythonOutput => {
            Err("a peer row runs in its own process, not through spawn_wait".into())
        }
    }
}
