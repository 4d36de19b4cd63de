//! Target-derived configuration only. Kernel and libc *capabilities* (clone3, pidfd,
//! `posix_spawn_file_actions_addchdir_np`, `close_range`, ...) are probed at run time, once,
//! and cached: the machine that builds the crate is not the machine that runs it.

use std::env;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rustc-check-cfg=cfg(forkexec_glibc)");
    println!("cargo:rustc-check-cfg=cfg(forkexec_musl)");

    let os = env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    let target_env = env::var("CARGO_CFG_TARGET_ENV").unwrap_or_default();
    if os == "linux" {
        match target_env.as_str() {
            "gnu" => println!("cargo:rustc-cfg=forkexec_glibc"),
            "musl" => println!("cargo:rustc-cfg=forkexec_musl"),
            _ => {}
        }
    }
}
