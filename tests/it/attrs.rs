//! Linux process attributes that need privileges or kernel features: clone namespace flags,
//! unshare, cgroup placement, credentials, chroot. Each is asserted on every strategy that
//! can express it, and must be refused with `Unsupported` by the ones that cannot. Where the
//! kernel refuses (no privilege, no cgroup filesystem), the test prints why and skips.

use crate::common;

use forkexec::raw::Strategy;
use forkexec::{Cmd, ErrorKind, Namespaces, Stdio, SysProcAttr};
use std::time::Duration;

use common::{is_helper, is_root, run_helper};

#[test]
fn clone_newpid_makes_the_child_pid_one() {
    let _g = common::start("clone_newpid_makes_the_child_pid_one", 60);
    if !is_root() {
        eprintln!("skipped: CLONE_NEWPID needs root");
        return;
    }
    for s in [Strategy::Vfork, Strategy::Fork, Strategy::Auto] {
        let out = Cmd::new("sh")
            .args(["-c", "echo $$"])
            .clone_namespaces(Namespaces::PID)
            .strategy(s)
            .output();
        match out {
            Ok(out) => assert_eq!(out, b"1\n", "{s:?}"),
            Err(e) if e.errno() == Some(libc::EPERM) || e.errno() == Some(libc::EINVAL) => {
                eprintln!("skipped: the kernel refuses CLONE_NEWPID here: {e}");
                return;
            }
            Err(e) => panic!("{s:?}: {e}"),
        }
    }
    let err = Cmd::new("true")
        .clone_namespaces(Namespaces::PID)
        .strategy(Strategy::PosixSpawn)
        .run()
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unsupported, "{err}");
}

#[test]
fn unshare_uts_keeps_hostname_changes_private() {
    let _g = common::start("unshare_uts_keeps_hostname_changes_private", 60);
    if !is_root() {
        eprintln!("skipped: unshare(CLONE_NEWUTS) needs root");
        return;
    }
    let before = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    for s in [Strategy::Vfork, Strategy::Fork, Strategy::Auto] {
        let r = Cmd::new("sh")
            .args([
                "-c",
                "echo forkexec-uts > /proc/sys/kernel/hostname && cat /proc/sys/kernel/hostname",
            ])
            .unshare(Namespaces::UTS)
            .strategy(s)
            .output();
        match r {
            Ok(out) => assert_eq!(out, b"forkexec-uts\n", "{s:?}"),
            Err(e) if e.kind() == ErrorKind::PermissionDenied => {
                eprintln!("skipped: unshare refused here: {e}");
                return;
            }
            Err(e) => panic!("{s:?}: {e}"),
        }
    }
    assert_eq!(
        std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap(),
        before
    );
    let err = Cmd::new("true")
        .unshare(Namespaces::UTS)
        .strategy(Strategy::PosixSpawn)
        .run();
    assert_eq!(err.unwrap_err().kind(), ErrorKind::Unsupported);
}

#[test]
fn cgroup_placement_moves_the_child() {
    let _g = common::start("cgroup_placement_moves_the_child", 60);
    // cgroup v2 where mounted there, else the v1 pids hierarchy.
    let roots = [
        "/sys/fs/cgroup/unified",
        "/sys/fs/cgroup/pids",
        "/sys/fs/cgroup",
    ];
    let name = format!("forkexec-test-{}", std::process::id());
    /// The test's cgroup, removed (`rmdir`: a cgroup's files cannot be unlinked) when
    /// dropped, pass or fail; by then its children have exited.
    struct Cgroup(std::path::PathBuf);
    impl Drop for Cgroup {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir(&self.0);
        }
    }
    let Some(cgroup) = roots.iter().find_map(|r| {
        let d = std::path::Path::new(r).join(&name);
        std::fs::create_dir(&d).ok().map(|()| Cgroup(d))
    }) else {
        eprintln!("skipped: no writable cgroup hierarchy here");
        return;
    };
    let dir = &cgroup.0;
    for s in [Strategy::Vfork, Strategy::Fork, Strategy::Auto] {
        let out = Cmd::new("cat")
            .arg("/proc/self/cgroup")
            .cgroup(dir)
            .strategy(s)
            .output();
        let out = String::from_utf8(out.unwrap_or_else(|e| panic!("{s:?}: {e}"))).unwrap();
        assert!(out.contains(&format!("/{name}\n")), "{s:?}: {out}");
    }
    let err = Cmd::new("true")
        .cgroup(dir)
        .strategy(Strategy::PosixSpawn)
        .run()
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unsupported);
    let err = Cmd::new("true")
        .cgroup("/no/such/cgroup")
        .run()
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
    // The children have exited: the cgroup is empty and can go.
    let dir = cgroup.0.clone();
    drop(cgroup);
    assert!(!dir.exists(), "cgroup {dir:?} not removed");
}

#[test]
fn credentials_and_chroot() {
    let _g = common::start("credentials_and_chroot", 60);
    if !is_root() {
        eprintln!("skipped: switching credentials needs root");
        return;
    }
    for s in [Strategy::Vfork, Strategy::Fork, Strategy::Auto] {
        let out = Cmd::new("/bin/sh")
            .args(["-c", "id -u; id -g; id -G"])
            .credential(65534, 65534, [65534])
            .strategy(s)
            .output()
            .unwrap_or_else(|e| panic!("{s:?}: {e}"));
        assert_eq!(out, b"65534\n65534\n65534\n", "{s:?}");
        let out = Cmd::new("/bin/sh")
            .args(["-c", "pwd"])
            .chroot("/")
            .dir("/tmp")
            .strategy(s)
            .output();
        assert_eq!(
            out.unwrap_or_else(|e| panic!("{s:?}: {e}")),
            b"/tmp\n",
            "{s:?}"
        );
    }
    for attr in [0, 1] {
        let mut cmd = Cmd::new("true");
        cmd.strategy(Strategy::PosixSpawn);
        if attr == 0 {
            cmd.credential(65534, 65534, []);
        } else {
            cmd.chroot("/");
        }
        assert_eq!(cmd.run().unwrap_err().kind(), ErrorKind::Unsupported);
    }
}

#[test]
fn pdeathsig_is_delivered_when_the_parent_thread_dies() {
    let _g = common::start("pdeathsig_is_delivered_when_the_parent_thread_dies", 60);
    for s in [Strategy::Vfork, Strategy::Fork] {
        // The parent of the child is the thread that spawned it: end that thread.
        let child = std::thread::spawn(move || {
            Cmd::new("sleep")
                .arg("30")
                .pdeathsig(forkexec::Signal::TERM)
                .strategy(s)
                .start()
        })
        .join()
        .unwrap()
        .unwrap_or_else(|e| panic!("{s:?}: {e}"));
        let mut child = child;
        let st = child.wait().unwrap();
        assert_eq!(st.signal(), Some(forkexec::Signal::TERM), "{s:?}: {st}");
    }
}

/// Opens a pseudo-terminal pair (master, slave), both close-on-exec and not our ctty.
fn open_pty() -> Option<(std::os::fd::OwnedFd, std::fs::File)> {
    use std::os::fd::FromRawFd;
    // SAFETY: plain libc calls; every fd is checked and owned at once.
    unsafe {
        let m = libc::posix_openpt(libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC);
        if m < 0 {
            return None;
        }
        let master = std::os::fd::OwnedFd::from_raw_fd(m);
        if libc::grantpt(m) != 0 || libc::unlockpt(m) != 0 {
            return None;
        }
        let mut name = [0 as libc::c_char; 128];
        if libc::ptsname_r(m, name.as_mut_ptr(), name.len()) != 0 {
            return None;
        }
        let s = libc::open(
            name.as_ptr(),
            libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC,
        );
        if s < 0 {
            return None;
        }
        Some((master, std::fs::File::from_raw_fd(s)))
    }
}

#[test]
fn setsid_with_ctty_gives_the_child_a_controlling_terminal() {
    let _g = common::start(
        "setsid_with_ctty_gives_the_child_a_controlling_terminal",
        60,
    );
    let Some((_master, slave)) = open_pty() else {
        eprintln!("skipped: no pseudo-terminals here");
        return;
    };
    // Field 7 of /proc/PID/stat is tty_nr: 0 without a controlling terminal.
    let script = "cut -d' ' -f7 /proc/$$/stat";
    for s in [Strategy::Vfork, Strategy::Fork, Strategy::Auto] {
        let sys = forkexec::SysProcAttr {
            setsid: true,
            ctty: Some(0),
            ..Default::default()
        };
        let out = Cmd::new("sh")
            .args(["-c", script])
            .stdin(slave.try_clone().unwrap())
            .sys(sys)
            .strategy(s)
            .output()
            .unwrap_or_else(|e| panic!("{s:?}: {e}"));
        let tty: i64 = String::from_utf8(out).unwrap().trim().parse().unwrap();
        assert_ne!(tty, 0, "{s:?}: no controlling terminal");
        // Without ctty, a new session has none.
        let out = Cmd::new("sh")
            .args(["-c", script])
            .setsid()
            .strategy(s)
            .output()
            .unwrap();
        assert_eq!(String::from_utf8(out).unwrap().trim(), "0", "{s:?}");
    }
    let sys = forkexec::SysProcAttr {
        setsid: true,
        ctty: Some(0),
        ..Default::default()
    };
    let err = Cmd::new("true")
        .sys(sys)
        .strategy(Strategy::PosixSpawn)
        .run()
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unsupported);
}

/// Every namespace at once, by clone and by unshare, with a cwd and null stdio: the parent's
/// fds, cwd and signal handlers are untouched (no flag can make the child share them).
#[test]
fn namespaces_leave_the_parent_alone() {
    let _g = common::start("namespaces_leave_the_parent_alone", 60);
    if !is_root() {
        eprintln!("skipped: namespaces need root");
        return;
    }
    let all = Namespaces::MOUNT
        | Namespaces::UTS
        | Namespaces::IPC
        | Namespaces::PID
        | Namespaces::NET
        | Namespaces::CGROUP;
    let fd_targets = || {
        (0..3)
            .map(|fd| std::fs::read_link(format!("/proc/self/fd/{fd}")).ok())
            .collect::<Vec<_>>()
    };
    let (fds, cwd) = (fd_targets(), std::env::current_dir().unwrap());
    let file = std::fs::File::open("/proc/self/status").unwrap();
    for s in [Strategy::Vfork, Strategy::Fork, Strategy::Auto] {
        for (clone, unshare) in [(all, Namespaces::NONE), (Namespaces::NONE, all)] {
            let r = Cmd::new("true")
                .clone_namespaces(clone)
                .unshare(unshare)
                .dir("/")
                .strategy(s)
                .status();
            match r {
                Ok(st) => assert!(st.success(), "{s:?}"),
                Err(e) if e.kind() == ErrorKind::PermissionDenied => {
                    eprintln!("skipped: namespaces refused here: {e}");
                    return;
                }
                Err(e) => panic!("{s:?}: {e}"),
            }
            assert_eq!(fd_targets(), fds, "{s:?}");
            assert_eq!(std::env::current_dir().unwrap(), cwd, "{s:?}");
            assert!(file.metadata().is_ok(), "{s:?}: a live File was closed");
        }
    }
}

/// Regression (issue 11): a child in a new mount namespace made its mounts private only
/// by chance; under a shared `/` its mounts propagated back into the parent's namespace.
/// The helper runs in a mount namespace of its own whose `/` is shared (util-linux
/// `unshare --propagation shared`), so nothing reaches the host's.
#[test]
fn unshared_mounts_stay_in_the_child() {
    let _g = common::start("unshared_mounts_stay_in_the_child", 90);
    if is_helper("unshared_mounts_stay_in_the_child") {
        let tmp = common::TempDir::new("unshared_mounts_stay_in_the_child");
        let dir = tmp.path();
        let mounted = || {
            let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
            info.contains(dir.to_str().unwrap())
        };
        let mut results = Vec::new();
        for s in [Strategy::Vfork, Strategy::Fork, Strategy::Auto] {
            for (clone, unshare) in [
                (Namespaces::MOUNT, Namespaces::NONE),
                (Namespaces::NONE, Namespaces::MOUNT),
            ] {
                let st = Cmd::new("mount")
                    .args(["-t", "tmpfs", "none"])
                    .arg(dir)
                    .clone_namespaces(clone)
                    .unshare(unshare)
                    .strategy(s)
                    .status();
                results.push((s, st.map(|st| st.success()), mounted()));
                if mounted() {
                    let _ = Cmd::new("umount").arg(dir).status();
                }
            }
        }
        for (s, st, leaked) in results {
            assert!(st.unwrap(), "{s:?}: mount failed");
            assert!(
                !leaked,
                "{s:?}: the child's mount appeared in the parent's namespace"
            );
        }
        println!("HELPER-OK");
        return;
    }
    if !is_root()
        || Cmd::new("unshare")
            .args(["--mount", "--propagation", "shared", "true"])
            .status()
            .map_or(true, |s| !s.success())
    {
        eprintln!("skipped: needs root and util-linux unshare");
        return;
    }
    run_helper(
        "unshared_mounts_stay_in_the_child",
        &["unshare", "--mount", "--propagation", "shared"],
        |_| {},
    );
}

/// Regression (issue 11): `credential` without groups kept the caller's supplementary
/// groups (root's 0, 4, 6 stayed with a child switched to `nobody`). The helper is started
/// with groups 0, 4 and 6 and checks what its children get.
#[test]
fn credential_clears_supplementary_groups() {
    let _g = common::start("credential_clears_supplementary_groups", 90);
    if is_helper("credential_clears_supplementary_groups") {
        let ours = Cmd::new("id").arg("-G").output().unwrap();
        assert_eq!(ours, b"0 4 6\n", "the helper's own groups");
        for s in [Strategy::Vfork, Strategy::Fork, Strategy::Auto] {
            let out = Cmd::new("id")
                .arg("-G")
                .credential(65534, 65534, [])
                .strategy(s)
                .output()
                .unwrap();
            assert_eq!(out, b"65534\n", "{s:?}: groups kept");
            let out = Cmd::new("id")
                .arg("-G")
                .credential(0, 0, [7])
                .strategy(s)
                .output()
                .unwrap();
            assert_eq!(out, b"0 7\n", "{s:?}");
            // Go's NoSetGroups: kept when asked.
            let sys = SysProcAttr {
                credential: Some(forkexec::Credential {
                    uid: 0,
                    gid: 0,
                    keep_groups: true,
                    ..Default::default()
                }),
                ..Default::default()
            };
            let out = Cmd::new("id")
                .arg("-G")
                .sys(sys)
                .strategy(s)
                .output()
                .unwrap();
            assert_eq!(out, b"0 4 6\n", "{s:?}: keep_groups");
        }
        println!("HELPER-OK");
        return;
    }
    if !is_root() {
        eprintln!("skipped: switching credentials needs root");
        return;
    }
    run_helper("credential_clears_supplementary_groups", &[], |c| {
        c.credential(0, 0, [0, 4, 6]);
    });
}

/// Regression (issue 11): `chroot` without `dir` left the child's cwd outside the new
/// root, where `..` leads back to the host's files. It now starts at the new root.
#[test]
fn chroot_without_dir_starts_at_the_new_root() {
    let _g = common::start("chroot_without_dir_starts_at_the_new_root", 60);
    if !is_root() {
        eprintln!("skipped: chroot needs root");
        return;
    }
    // Run from a directory other than "/", so a cwd left outside the root shows.
    assert_ne!(std::env::current_dir().unwrap(), std::path::Path::new("/"));
    for s in [Strategy::Vfork, Strategy::Fork, Strategy::Auto] {
        let out = Cmd::new("/bin/sh")
            .args(["-c", "pwd -P"])
            .chroot("/")
            .strategy(s)
            .output()
            .unwrap_or_else(|e| panic!("{s:?}: {e}"));
        assert_eq!(out, b"/\n", "{s:?}: cwd outside the new root");
    }
}

/// Regression (issue 11): `foreground` made the child reset SIGTTOU before `TIOCSPGRP`,
/// so a child in its own (background) group was stopped by the terminal and `start`
/// never returned (Go's TestForeground shape). The helper runs on a pty (util-linux
/// `script`), whose foreground group it leads; each child takes the terminal's foreground
/// in a group of its own (implied by `foreground`, as in Go), and the helper takes it back.
#[test]
fn foreground_child_is_not_stopped() {
    let _g = common::start("foreground_child_is_not_stopped", 90);
    if is_helper("foreground_child_is_not_stopped") {
        for s in [Strategy::Vfork, Strategy::Fork, Strategy::Auto] {
            let sys = SysProcAttr {
                foreground: true,
                ..Default::default()
            };
            let st = Cmd::new("sh")
                .args(["-c", "test \"$(cut -d' ' -f5 /proc/$$/stat)\" = $$"])
                .stdin(Stdio::inherit())
                .sys(sys)
                .strategy(s)
                .status()
                .unwrap_or_else(|e| panic!("{s:?}: {e}"));
            assert!(st.success(), "{s:?}: not in a group of its own: {st}");
            // Take the terminal back: the helper's group is in the background now, so
            // tcsetpgrp must not stop it either (a child with foreground does it).
            let back = Cmd::new("true")
                .stdin(Stdio::inherit())
                .sys(SysProcAttr {
                    foreground: true,
                    process_group: Some(rustix::process::getpgrp().as_raw_nonzero().get()),
                    ..Default::default()
                })
                .strategy(s)
                .status()
                .unwrap();
            assert!(back.success());
        }
        println!("HELPER-OK");
        return;
    }
    if Cmd::new("script")
        .args(["-qec", "true", "/dev/null"])
        .status()
        .map_or(true, |s| !s.success())
    {
        eprintln!("skipped: needs util-linux script");
        return;
    }
    let exe = std::env::current_exe().unwrap();
    let line = format!(
        "{} --exact {} --nocapture --test-threads=1",
        exe.display(),
        common::test_path("foreground_child_is_not_stopped")
    );
    run_helper("foreground_child_is_not_stopped", &[], |c| {
        *c = Cmd::new("script");
        c.args(["-qec", &line, "/dev/null"])
            .env(common::HELPER_ENV, "foreground_child_is_not_stopped")
            .timeout(Duration::from_secs(60));
    });
}

/// `setsid` with `foreground` (a pty launch): the session leader already leads its group,
/// so `foreground` must not add a `setpgid` the kernel refuses. Without a terminal on fd 0
/// the start fails at the terminal step, not at `setpgid`.
#[test]
fn setsid_with_foreground_does_not_setpgid() {
    let _g = common::start("setsid_with_foreground_does_not_setpgid", 60);
    for s in [Strategy::Vfork, Strategy::Fork, Strategy::Auto] {
        let sys = SysProcAttr {
            setsid: true,
            foreground: true,
            ..Default::default()
        };
        let err = Cmd::new("true").sys(sys).strategy(s).run().unwrap_err();
        assert_eq!(err.stage(), Some(forkexec::Stage::Ctty), "{s:?}: {err}");
    }
}

/// A relative `dir` after `chroot` would be resolved from the old cwd, outside the new
/// root: refused before anything is cloned, on every strategy.
#[test]
fn chroot_with_a_relative_dir_is_refused() {
    let _g = common::start("chroot_with_a_relative_dir_is_refused", 60);
    for s in common::STRATEGIES {
        let err = Cmd::new("/bin/true")
            .chroot("/")
            .dir("tmp")
            .strategy(s)
            .run()
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput, "{s:?}: {err}");
    }
}

/// umask and resource limits (issue 16): set in the child on every strategy that can,
/// refused by PosixSpawn, bad values refused before any clone.
#[test]
fn umask_and_rlimits() {
    let _g = common::start("umask_and_rlimits", 60);
    use forkexec::Resource;
    for s in [Strategy::Vfork, Strategy::Fork, Strategy::Auto] {
        let out = Cmd::new("sh")
            .args(["-c", "umask; ulimit -c; ulimit -n; ulimit -Hn"])
            .umask(0o077)
            .rlimit(Resource::CORE, 0, 0)
            .rlimit(Resource::NOFILE, 77, 99)
            .strategy(s)
            .output()
            .unwrap_or_else(|e| panic!("{s:?}: {e}"));
        assert_eq!(out, b"0077\n0\n77\n99\n", "{s:?}");
    }
    for (what, mut cmd) in [
        ("umask", {
            let mut c = Cmd::new("true");
            c.umask(0o22);
            c
        }),
        ("rlimit", {
            let mut c = Cmd::new("true");
            c.rlimit(Resource::CORE, 0, 0);
            c
        }),
    ] {
        let err = cmd.strategy(Strategy::PosixSpawn).run().unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Unsupported, "{what}");
    }
    let err = Cmd::new("true").umask(0o1000).run().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    let err = Cmd::new("true")
        .rlimit(Resource::NOFILE, 10, 5)
        .run()
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    assert!(common::children().is_empty());
}

/// User namespace id maps (Go's UidMappings/GidMappings, issue 16): written by the child
/// itself, by clone and by unshare, with setgroups denied unless enabled; refused without a
/// user namespace and by PosixSpawn.
#[test]
fn user_namespace_id_maps() {
    let _g = common::start("user_namespace_id_maps", 60);
    use forkexec::IdMap;
    let map = |c, h| {
        vec![IdMap {
            container_id: c,
            host_id: h,
            size: 1,
        }]
    };
    let script = "cat /proc/self/uid_map /proc/self/gid_map /proc/self/setgroups; id -u; id -g";
    let me = (
        rustix::process::geteuid().as_raw(),
        rustix::process::getegid().as_raw(),
    );
    let (u, g) = (me.0.to_string(), me.1.to_string());
    for s in [Strategy::Vfork, Strategy::Fork, Strategy::Auto] {
        for by_clone in [true, false] {
            let ns = if by_clone {
                (Namespaces::USER, Namespaces::NONE)
            } else {
                (Namespaces::NONE, Namespaces::USER)
            };
            let sys = SysProcAttr {
                clone_namespaces: ns.0,
                unshare: ns.1,
                uid_mappings: map(0, me.0),
                gid_mappings: map(0, me.1),
                ..Default::default()
            };
            let r = Cmd::new("sh")
                .args(["-c", script])
                .sys(sys)
                .strategy(s)
                .output();
            let out = match r {
                Ok(out) => out,
                Err(e) if !is_root() => {
                    eprintln!("skipped: user namespaces with these maps need root here: {e}");
                    return;
                }
                Err(e) => panic!("{s:?} clone={by_clone}: {e}"),
            };
            let text = String::from_utf8(out).unwrap();
            let words: Vec<&str> = text.split_whitespace().collect();
            assert_eq!(
                words,
                ["0", &u, "1", "0", &g, "1", "deny", "0", "0"],
                "{s:?} clone={by_clone}"
            );
        }
    }
    let err = Cmd::new("true")
        .sys(SysProcAttr {
            uid_mappings: map(0, 0),
            ..Default::default()
        })
        .run()
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    // A map of another host id cannot be written by the child itself.
    let err = Cmd::new("true")
        .sys(SysProcAttr {
            unshare: Namespaces::USER,
            uid_mappings: map(0, me.0 + 1),
            ..Default::default()
        })
        .run()
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unsupported);
    let err = Cmd::new("true")
        .sys(SysProcAttr {
            unshare: Namespaces::USER,
            uid_mappings: map(0, me.0),
            ..Default::default()
        })
        .strategy(Strategy::PosixSpawn)
        .run()
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unsupported);
}
