//! The raw libc baselines' plumbing: argv/envp built once, `waitpid`, and the floor child
//! (`clone(CLONE_VM|CLONE_VFORK)` + `execve`).

use std::ffi::{CString, OsStr, OsString};
use std::os::raw::{c_char, c_int, c_void};
use std::os::unix::ffi::OsStrExt;

use crate::BoxError;

unsafe extern "C" {
    /// The C library's environment, as `execve` wants it.
    static environ: *const *const c_char;
}

/// What the raw libc baselines need, built once outside the timed loop.
pub struct RawArgs {
    pub path: CString,
    pub _args: Vec<CString>,
    pub argv: Vec<*const c_char>,
    /// With `--env N`: the parent's environment plus the N variables, so the raw rows pass
    /// the same environment as the `Cmd` and std rows.
    pub _env: Vec<CString>,
    pub _envp: Vec<*const c_char>,
    pub envp: *const *const c_char,
}

// SAFETY: the pointers point into `path`/`_args` (owned, never modified after `new`) and
// into the C library's `environ`, which nothing modifies while the benchmark runs; the
// threads only read them.
unsafe impl Sync for RawArgs {}

impl RawArgs {
    pub fn new(
        program: &OsStr,
        args: &[OsString],
        extra_env: &[(OsString, OsString)],
    ) -> Result<RawArgs, BoxError> {
        let path = CString::new(program.as_bytes())?;
        let all = std::iter::once(program).chain(args.iter().map(OsString::as_os_str));
        let args = all
            .map(|a| CString::new(a.as_bytes()))
            .collect::<Result<Vec<_>, _>>()?;
        let mut argv: Vec<*const c_char> = args.iter().map(|a| a.as_ptr()).collect();
        argv.push(std::ptr::null());
        let mut env = Vec::new();
        if !extra_env.is_empty() {
            for (k, v) in std::env::vars_os().chain(extra_env.iter().cloned()) {
                let mut e = k.as_bytes().to_vec();
                e.push(b'=');
                e.extend_from_slice(v.as_bytes());
                env.push(CString::new(e)?);
            }
        }
        let mut envp: Vec<*const c_char> = env.iter().map(|e| e.as_ptr()).collect();
        envp.push(std::ptr::null());
        let envp_ptr = if env.is_empty() {
            // SAFETY: reading the pointer value of `environ`; nothing modifies the
            // environment while this program measures.
            unsafe { environ }
        } else {
            envp.as_ptr()
        };
        Ok(RawArgs {
            path,
            _args: args,
            argv,
            _env: env,
            _envp: envp,
            envp: envp_ptr,
        })
    }
}

pub fn last_os_error(what: &str) -> BoxError {
    format!("{what}: {}", std::io::Error::last_os_error()).into()
}

/// `waitpid(pid, &status, 0)`, retrying on `EINTR`; the raw wait status.
pub fn libc_wait(pid: libc::pid_t) -> Result<i32, BoxError> {
    let mut status = 0;
    loop {
        // SAFETY: `status` is a valid out-pointer for the duration of the call.
        let r = unsafe { libc::waitpid(pid, &mut status, 0) };
        if r == pid {
            return Ok(status);
        }
        let e = std::io::Error::last_os_error();
        if e.raw_os_error() != Some(libc::EINTR) {
            return Err(format!("waitpid({pid}): {e}").into());
        }
    }
}

/// What the floor child needs: pointers prepared by the parent, and the fd to put on 1.
pub struct FloorArgs {
    pub path: *const c_char,
    pub argv: *const *const c_char,
    pub envp: *const *const c_char,
    /// Duplicated onto fd 1 before `execve` when `>= 0`.
    pub stdout_fd: c_int,
}

/// The floor child: runs on its own stack in the parent's memory (`CLONE_VM`) while the
/// parent thread is suspended (`CLONE_VFORK`); only async-signal-safe calls.
pub extern "C" fn floor_child(arg: *mut c_void) -> c_int {
    // SAFETY: `arg` is the parent's `FloorArgs`, alive until the parent resumes, which is
    // after this child has exec'd or exited.
    let a = unsafe { &*arg.cast::<FloorArgs>() };
    // SAFETY: dup2, execve and _exit are async-signal-safe; the pointers are valid C
    // strings / NULL-terminated arrays prepared before the clone.
    unsafe {
        if a.stdout_fd >= 0 && libc::dup2(a.stdout_fd, 1) < 0 {
            libc::_exit(127);
        }
        libc::execve(a.path, a.argv, a.envp);
        libc::_exit(127)
    }
}

/// The floor: `clone(CLONE_VM|CLONE_VFORK|SIGCHLD)` running [`floor_child`] on `stack`.
pub fn libc_clone(
    stack: &mut [u8],
    raw: &RawArgs,
    stdout_fd: c_int,
) -> Result<libc::pid_t, BoxError> {
    let args = FloorArgs {
        path: raw.path.as_ptr(),
        argv: raw.argv.as_ptr(),
        envp: raw.envp,
        stdout_fd,
    };
    // The stack grows down: hand clone its (16-byte aligned) top.
    let top = (stack.as_mut_ptr() as usize + stack.len()) & !15;
    // SAFETY: `stack` is this thread's, unused by anything else, and `args` lives in this
    // frame; with CLONE_VFORK this thread is suspended until the child has called execve
    // or _exit, so both outlive the child's use of them. The child only runs
    // `floor_child`, which is async-signal-safe.
    let pid = unsafe {
        libc::clone(
            floor_child,
            top as *mut c_void,
            libc::CLONE_VM | libc::CLONE_VFORK | libc::SIGCHLD,
            (&args as *const FloorArgs).cast_mut().cast(),
        )
    };
    if pid < 0 {
        return Err(last_os_error("clone"));
    }
    Ok(pid)
}
