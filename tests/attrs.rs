//! Linux process attributes that need privileges or kernel features: clone namespace flags,
//! unshare, cgroup placement, credentials, chroot. Each is asserted on every strategy that
//! can express it, and must be refused with `Unsupported` by the ones that cannot. Where the
//! kernel refuses (no privilege, no cgroup filesystem), the test prints why and skips.

mod common;

use forkexec::raw::Strategy;
use forkexec::{Cmd, ErrorKind};

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

#[test]
fn clone_newpid_makes_the_child_pid_one() {
    let _g = common::start("clone_newpid_makes_the_child_pid_one", 60);
    if !is_root() {
        eprintln!("skipped: CLONE_NEWPID needs root");
        return;
    }
    for s in [Strategy::Vfork, Strategy::Auto] {
        let out = Cmd::new("sh")
            .args(["-c", "echo $$"])
            .clone_flags(libc::CLONE_NEWPID)
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
    for s in [Strategy::Fork, Strategy::PosixSpawn] {
        let err = Cmd::new("true")
            .clone_flags(libc::CLONE_NEWPID)
            .strategy(s)
            .run()
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Unsupported, "{s:?}: {err}");
    }
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
            .unshare(libc::CLONE_NEWUTS)
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
        .unshare(libc::CLONE_NEWUTS)
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
    let Some(dir) = roots.iter().find_map(|r| {
        let d = std::path::Path::new(r).join(&name);
        std::fs::create_dir(&d).ok().map(|()| d)
    }) else {
        eprintln!("skipped: no writable cgroup hierarchy here");
        return;
    };
    for s in [Strategy::Vfork, Strategy::Fork, Strategy::Auto] {
        let out = Cmd::new("cat")
            .arg("/proc/self/cgroup")
            .cgroup(&dir)
            .strategy(s)
            .output();
        let out = String::from_utf8(out.unwrap_or_else(|e| panic!("{s:?}: {e}"))).unwrap();
        assert!(out.contains(&format!("/{name}\n")), "{s:?}: {out}");
    }
    let err = Cmd::new("true")
        .cgroup(&dir)
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
    std::fs::remove_dir(&dir).unwrap();
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
            .credential(65534, 65534, Some(vec![65534]))
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
            cmd.credential(65534, 65534, None);
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
