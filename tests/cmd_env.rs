//! `Cmd` and the parent's environment. The only test binary that mutates its own process
//! environment (`std::env::set_var`): its tests are serialised by `common::start`, and no
//! thread of it reads the environment while a test changes it.

mod common;

use std::ffi::{OsStr, OsString};
use std::path::Path;

use common::{STRATEGIES, TempDir, relative_from_cwd};
use forkexec::{Cmd, ErrorKind, look_path};

/// Sets (or removes) a variable of this process and restores its old value when dropped.
struct EnvVar {
    key: &'static str,
    old: Option<OsString>,
}

impl EnvVar {
    fn set(key: &'static str, val: impl AsRef<OsStr>) -> EnvVar {
        let old = std::env::var_os(key);
        // SAFETY: the tests of this binary are serialised (common::start) and no other
        // thread of it reads or writes the environment meanwhile.
        unsafe { std::env::set_var(key, val) };
        EnvVar { key, old }
    }

    fn unset(key: &'static str) -> EnvVar {
        let old = std::env::var_os(key);
        // SAFETY: as in `set`.
        unsafe { std::env::remove_var(key) };
        EnvVar { key, old }
    }
}

impl Drop for EnvVar {
    fn drop(&mut self) {
        // SAFETY: as in `set`.
        unsafe {
            match &self.old {
                Some(v) => std::env::set_var(self.key, v),
                None => std::env::remove_var(self.key),
            }
        }
    }
}

/// `PATH` with `dir` in front of the current value.
fn path_with(dir: &Path) -> OsString {
    let mut p = dir.as_os_str().to_owned();
    if let Some(old) = std::env::var_os("PATH") {
        p.push(":");
        p.push(old);
    }
    p
}

#[test]
fn inherits_var_set_after_cmd_created() {
    let _g = common::start("inherits_var_set_after_cmd_created", 60);
    for s in STRATEGIES {
        // Inherited as is.
        let mut plain = Cmd::new("printenv");
        plain.arg("FORKEXEC_LATE").strategy(s);
        // With a change: the environment is captured at the first start.
        let mut changed = Cmd::new("printenv");
        changed.arg("FORKEXEC_LATE").env("OTHER", "1").strategy(s);
        // With a directory (PWD added): likewise.
        let mut with_dir = Cmd::new("printenv");
        with_dir.arg("FORKEXEC_LATE").dir("/").strategy(s);

        let _v = EnvVar::set("FORKEXEC_LATE", format!("late {s:?}"));
        let want = format!("late {s:?}\n");
        for (what, cmd) in [
            ("plain", &mut plain),
            ("changed", &mut changed),
            ("with_dir", &mut with_dir),
        ] {
            let out = cmd
                .output()
                .unwrap_or_else(|e| panic!("{s:?} {what}: {e:?}"));
            assert_eq!(String::from_utf8(out).unwrap(), want, "{s:?} {what}");
            let environ = cmd.environ().unwrap();
            let entry = format!("FORKEXEC_LATE=late {s:?}");
            assert!(
                environ.iter().any(|e| e == entry.as_str()),
                "{s:?} {what}: environ() lacks {entry}"
            );
        }
    }
    // A variable removed from the parent before the first start is not passed.
    let _v = EnvVar::set("FORKEXEC_GONE", "x");
    let mut cmd = Cmd::new("/usr/bin/env");
    cmd.env("OTHER", "1");
    drop(_v);
    let _u = EnvVar::unset("FORKEXEC_GONE");
    let out = String::from_utf8(cmd.output().unwrap()).unwrap();
    assert!(
        !out.lines().any(|l| l.starts_with("FORKEXEC_GONE=")),
        "{out}"
    );
}

#[test]
fn lookup_uses_parent_path_when_cmd_sets_none() {
    let _g = common::start("lookup_uses_parent_path_when_cmd_sets_none", 60);
    let dir = TempDir::new("lookup_uses_parent_path_when_cmd_sets_none");
    let prog = dir.script("forkexec-envtest-prog", "echo found via parent PATH");
    // Not found before PATH names the directory.
    let err = Cmd::new("forkexec-envtest-prog").start().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound, "{err:?}");

    let _p = EnvVar::set("PATH", path_with(dir.path()));
    assert_eq!(look_path("forkexec-envtest-prog").unwrap(), prog);
    for s in STRATEGIES {
        let mut cmd = Cmd::new("forkexec-envtest-prog");
        cmd.strategy(s);
        assert_eq!(cmd.resolved_path().unwrap(), prog, "{s:?}");
        let out = cmd.output().unwrap_or_else(|e| panic!("{s:?}: {e:?}"));
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "found via parent PATH\n",
            "{s:?}"
        );
        // Other env changes that leave PATH alone still look up on the parent's PATH.
        let mut cmd = Cmd::new("forkexec-envtest-prog");
        cmd.env("UNRELATED", "1").strategy(s);
        assert_eq!(cmd.resolved_path().unwrap(), prog, "{s:?}");
        cmd.run().unwrap_or_else(|e| panic!("{s:?}: {e:?}"));
    }
}

#[test]
fn relative_parent_path_entry_is_dot() {
    let _g = common::start("relative_parent_path_entry_is_dot", 60);
    let dir = TempDir::new("relative_parent_path_entry_is_dot");
    dir.script("forkexec-envtest-dot", "echo dot via parent PATH");
    let rel = relative_from_cwd(dir.path());
    let _p = EnvVar::set("PATH", path_with(&rel));
    let err = look_path("forkexec-envtest-dot").unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Dot, "{err:?}");
    assert_eq!(err.path(), Some(rel.join("forkexec-envtest-dot").as_path()));
    for s in STRATEGIES {
        let mut cmd = Cmd::new("forkexec-envtest-dot");
        cmd.strategy(s);
        let err = cmd.start().unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Dot, "{s:?}: {err:?}");
        assert!(common::children().is_empty(), "{s:?}");
        cmd.allow_dot(true);
        let out = cmd.output().unwrap_or_else(|e| panic!("{s:?}: {e:?}"));
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "dot via parent PATH\n",
            "{s:?}"
        );
    }
}
