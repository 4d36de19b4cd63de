//! Shared by the benches: cargo's `LD_LIBRARY_PATH` entries dropped before measuring.

/// `cargo bench` prepends its own directories (the target directory's, the toolchain's) to
/// `LD_LIBRARY_PATH`; every dynamically linked child would look for its libraries there
/// first (~+140 µs per `/bin/true` spawn on the README's machine). Drops those entries,
/// keeping any the user set. Runs first in `main`, while this is the only thread.
pub fn drop_cargo_library_path() {
    use std::path::Path;
    let (Some(_), Some(old)) = (
        std::env::var_os("CARGO"),
        std::env::var_os("LD_LIBRARY_PATH"),
    ) else {
        return;
    };
    // <target>/<profile>/deps/<this binary>: cargo's entries are under <profile>.
    let exe = std::env::current_exe().ok();
    let profile = exe.as_deref().and_then(Path::parent).and_then(Path::parent);
    let all: Vec<_> = std::env::split_paths(&old).collect();
    let kept: Vec<_> = all
        .iter()
        .filter(|p| {
            !(profile.is_some_and(|d| p.starts_with(d))
                || p.components().any(|c| c.as_os_str() == "rustlib")
                || p.join("rustlib").is_dir())
        })
        .collect();
    if kept.len() < all.len() {
        // SAFETY: no other thread exists yet.
        unsafe {
            match std::env::join_paths(kept) {
                Ok(v) if !v.is_empty() => std::env::set_var("LD_LIBRARY_PATH", v),
                _ => std::env::remove_var("LD_LIBRARY_PATH"),
            }
        }
    }
}

/// The floor: a bare `clone(CLONE_VM|CLONE_VFORK|SIGCHLD)` running `child(arg)` on `stack`
/// (the top aligned to 16). Returns the pid; panics if the kernel refuses.
///
/// # Safety
/// `child` may only make async-signal-safe calls on memory `arg` points to, and must end in
/// `execve` or `_exit`; `stack` and what `arg` points to must outlive the call (this thread
/// is suspended until the child execs or exits).
#[allow(dead_code)] // not every bench measures the floor
pub unsafe fn clone_vfork(
    stack: &mut [u8],
    child: extern "C" fn(*mut libc::c_void) -> libc::c_int,
    arg: *mut libc::c_void,
) -> libc::pid_t {
    let top = (stack.as_mut_ptr() as usize + stack.len()) & !15;
    // SAFETY: forwarded to the caller.
    let pid = unsafe {
        libc::clone(
            child,
            top as *mut libc::c_void,
            libc::CLONE_VM | libc::CLONE_VFORK | libc::SIGCHLD,
            arg,
        )
    };
    assert!(pid > 0, "clone: {}", std::io::Error::last_os_error());
    pid
}
