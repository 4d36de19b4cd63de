//! The shared fixtures of tests/common keep their promises: a temp dir is unique and is
//! removed whether its test passes or fails; a helper test is found by its path here.

use crate::common;

use std::os::unix::fs::PermissionsExt;
use std::panic::{AssertUnwindSafe, catch_unwind};

use common::TempDir;

#[test]
fn temp_dir_is_unique_and_removed_pass_or_fail() {
    let _g = common::start("temp_dir_is_unique_and_removed_pass_or_fail", 30);
    let (a, b) = (TempDir::new("same"), TempDir::new("same"));
    assert_ne!(a.path(), b.path(), "one tag, two dirs");
    assert!(
        a.path().is_absolute() && a.path().is_dir(),
        "{:?}",
        a.path()
    );
    let script = a.script("sub/s", "exit 0");
    let mode = std::fs::metadata(&script).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o755, "{script:?}");
    assert_eq!(a.file("f", "x", 0o600), a.join("f"));
    let paths = [a.path().to_owned(), b.path().to_owned()];
    drop((a, b));
    assert!(paths.iter().all(|p| !p.exists()), "{paths:?}");

    let rel = TempDir::relative("rel");
    assert!(
        rel.path().is_relative() && rel.path().is_dir(),
        "{:?}",
        rel.path()
    );
    let rel_path = rel.path().to_owned();
    drop(rel);
    assert!(!rel_path.exists(), "{rel_path:?}");

    // A failing test: its dir goes while the panic unwinds. (The default hook would print
    // the panic and, under RUST_BACKTRACE, load this binary's debug info for good.)
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let mut seen = None;
    let r = catch_unwind(AssertUnwindSafe(|| {
        let t = TempDir::new("fails");
        t.file("left", "behind?", 0o644);
        seen = Some(t.path().to_owned());
        panic!("the test fails");
    }));
    std::panic::set_hook(hook);
    assert!(r.is_err());
    let seen = seen.expect("the dir was made");
    assert!(!seen.exists(), "{seen:?} left behind by a failed test");
}

#[test]
fn test_path_names_a_test_by_its_module_path() {
    let _g = common::start("test_path_names_a_test_by_its_module_path", 30);
    assert_eq!(
        common::test_path("test_path_names_a_test_by_its_module_path"),
        "fixtures::test_path_names_a_test_by_its_module_path"
    );
    // A helper in another module of this binary.
    assert_eq!(
        common::test_path("fake_proc_helper"),
        "raw::fake_proc_helper"
    );
}
