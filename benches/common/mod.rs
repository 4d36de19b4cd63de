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
