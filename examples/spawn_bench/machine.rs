//! The machine and the process: kernel and C library versions, load, memory, the environment
//! cargo leaves, the ballast.

use std::ffi::CStr;
use std::os::raw::c_void;

const PAGE: usize = 4096;

/// `uname -r`.
pub fn kernel_release() -> String {
    // SAFETY: `utsname` is plain old data; all-zero is a valid value.
    let mut u: libc::utsname = unsafe { std::mem::zeroed() };
    // SAFETY: `u` is a valid, writable `utsname`.
    if unsafe { libc::uname(&mut u) } != 0 {
        return "unknown".to_owned();
    }
    // SAFETY: on success `release` holds a NUL-terminated string inside the array.
    let release = unsafe { CStr::from_ptr(u.release.as_ptr()) };
    release.to_string_lossy().into_owned()
}

/// The C library and its version.
#[cfg(target_env = "gnu")]
pub fn libc_version() -> String {
    // SAFETY: gnu_get_libc_version returns a pointer to a static NUL-terminated string.
    let v = unsafe { CStr::from_ptr(libc::gnu_get_libc_version()) };
    format!("glibc {}", v.to_string_lossy())
}

#[cfg(not(target_env = "gnu"))]
pub fn libc_version() -> String {
    if cfg!(target_env = "musl") {
        "musl".to_owned()
    } else {
        "unknown libc".to_owned()
    }
}

/// The load averages over 1, 5 and 15 minutes, as `/proc/loadavg` has them (`?` when
/// unreadable).
pub fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|| "?".to_owned())
}

/// This process's resident set size in MiB, from `/proc/self/status`.
pub fn vm_rss_mib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024)
}
/// `cargo run` and `cargo bench` prepend their own directories (the target directory's, the
/// toolchain's) to `LD_LIBRARY_PATH`; every dynamically linked child would then look for
/// its libraries there first — on the machine of the README that adds ~140 µs (+29 %) to a
/// spawn of `/bin/true`. Drops those entries (keeping any the user set); the number
/// dropped. Must run before any thread exists.
pub fn drop_cargo_library_path() -> usize {
    use std::path::Path;
    let (Some(_), Some(old)) = (
        std::env::var_os("CARGO"),
        std::env::var_os("LD_LIBRARY_PATH"),
    ) else {
        return 0;
    };
    // <target>/<profile>/examples/<this binary>: cargo's entries are under <profile>.
    let exe = std::env::current_exe().ok();
    let profile = exe.as_deref().and_then(Path::parent).and_then(Path::parent);
    let cargos = |p: &Path| {
        profile.is_some_and(|d| p.starts_with(d))
            || p.components().any(|c| c.as_os_str() == "rustlib")
            || p.join("rustlib").is_dir()
    };
    let all: Vec<_> = std::env::split_paths(&old).collect();
    let kept: Vec<_> = all.iter().filter(|p| !cargos(p)).collect();
    let dropped = all.len() - kept.len();
    if dropped > 0 {
        // SAFETY: called first thing in `main`, while this is the only thread.
        unsafe {
            match std::env::join_paths(kept) {
                Ok(v) if !v.is_empty() => std::env::set_var("LD_LIBRARY_PATH", v),
                _ => std::env::remove_var("LD_LIBRARY_PATH"),
            }
        }
    }
    dropped
}
/// The memory the fork rows have to copy the page tables of: `mib` MiB in 4 KiB pages (no
/// transparent huge pages, which would make the copy 512 times cheaper than for a typical
/// heap), one write per page so every page is really mapped.
pub fn ballast(mib: usize) -> Vec<u8> {
    let mut v = vec![0u8; mib << 20];
    if !v.is_empty() {
        let start = v.as_mut_ptr() as usize;
        let aligned = start.next_multiple_of(PAGE);
        let len = (start + v.len()).saturating_sub(aligned) & !(PAGE - 1);
        // SAFETY: the range lies inside `v`'s allocation; MADV_NOHUGEPAGE only changes how
        // the kernel backs it. A failure leaves the default, which is fine.
        unsafe { libc::madvise(aligned as *mut c_void, len, libc::MADV_NOHUGEPAGE) };
    }
    v.iter_mut().step_by(PAGE).for_each(|b| *b = 1);
    v
}
