//! The rows: one way of spawning and waiting each, its key, its name and the rows its ratios
//! divide by.

use forkexec::raw::Strategy;

/// One way of spawning and waiting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Row {
    Forkexec(Strategy),
    Cmd,
    CmdResetAll,
    Std,
    LibcPosixSpawn,
    LibcFork,
    LibcClone,
    /// A new `Cmd` per spawn from a bare name looked up on `PATH` (issue 14, target 2).
    CmdName,
    /// A new std `Command` per spawn from the same bare name.
    StdName,
    /// Go's `exec.Command(p).Run()`, in a peer process.
    Go,
    /// CPython's `subprocess.run([p])`, in a peer process.
    Python,
    CmdOutput,
    /// A new `Cmd` per spawn with `Stdio::from_writer` on stdout and stderr, then
    /// `status()` (issue 14, target 3).
    CmdWriters,
    StdOutput,
    LibcCloneOutput,
    /// Go's `exec.Command(p).Output()`, in a peer process.
    GoOutput,
    /// CPython's `subprocess.run([p], capture_output=True)`, in a peer process.
    PythonOutput,
}

/// The status rows, in the order of the table.
pub const STATUS_ROWS: [Row; 14] = [
    Row::Forkexec(Strategy::Auto),
    Row::Forkexec(Strategy::Vfork),
    Row::Forkexec(Strategy::PosixSpawn),
    Row::Forkexec(Strategy::Fork),
    Row::Cmd,
    Row::CmdResetAll,
    Row::Std,
    Row::LibcPosixSpawn,
    Row::LibcFork,
    Row::LibcClone,
    Row::CmdName,
    Row::StdName,
    Row::Go,
    Row::Python,
];

/// The output rows (`--output`), in the order of the table.
pub const OUTPUT_ROWS: [Row; 6] = [
    Row::CmdOutput,
    Row::CmdWriters,
    Row::StdOutput,
    Row::LibcCloneOutput,
    Row::GoOutput,
    Row::PythonOutput,
];

impl Row {
    /// Every row, status rows first.
    pub fn all() -> impl Iterator<Item = Row> {
        STATUS_ROWS.into_iter().chain(OUTPUT_ROWS)
    }

    /// The row's key, for `--only` and the JSON lines.
    pub fn key(self) -> &'static str {
        match self {
            Row::Forkexec(Strategy::Auto) => "auto",
            Row::Forkexec(Strategy::Vfork) => "vfork",
            Row::Forkexec(Strategy::PosixSpawn) => "posix_spawn",
            Row::Forkexec(Strategy::Fork) => "fork",
            Row::Cmd => "cmd",
            Row::CmdResetAll => "cmd_reset_all",
            Row::Std => "std",
            Row::LibcPosixSpawn => "libc_posix_spawn",
            Row::LibcFork => "libc_fork",
            Row::LibcClone => "libc_clone",
            Row::CmdName => "cmd_name",
            Row::StdName => "std_name",
            Row::Go => "go",
            Row::Python => "python",
            Row::CmdOutput => "cmd_output",
            Row::CmdWriters => "cmd_writers",
            Row::StdOutput => "std_output",
            Row::LibcCloneOutput => "libc_clone_output",
            Row::GoOutput => "go_output",
            Row::PythonOutput => "python_output",
        }
    }

    /// The row's name in the table; `auto` is what `Strategy::Auto` resolved to.
    pub fn name(self, auto: Strategy) -> String {
        match self {
            Row::Forkexec(Strategy::Auto) => format!("forkexec Auto ({auto:?})"),
            Row::Forkexec(s) => format!("forkexec {s:?}"),
            Row::Cmd => "forkexec Cmd::status() (Auto)".to_owned(),
            Row::CmdResetAll => "forkexec Cmd, ignored_signals(Reset)".to_owned(),
            Row::Std => "std Command::status()".to_owned(),
            Row::LibcPosixSpawn => "raw libc posix_spawn".to_owned(),
            Row::LibcFork => "raw libc fork+execve".to_owned(),
            Row::LibcClone => "raw libc clone(CLONE_VM|CLONE_VFORK) floor".to_owned(),
            Row::CmdName => "forkexec Cmd::new(name).status()".to_owned(),
            Row::StdName => "std Command::new(name).status()".to_owned(),
            Row::Go => "Go exec.Command(p).Run()".to_owned(),
            Row::Python => "CPython subprocess.run([p])".to_owned(),
            Row::CmdOutput => "forkexec Cmd::output() (Auto)".to_owned(),
            Row::CmdWriters => "forkexec Cmd from_writer×2 + status()".to_owned(),
            Row::StdOutput => "std Command::output()".to_owned(),
            Row::LibcCloneOutput => "raw libc clone+pipe floor".to_owned(),
            Row::GoOutput => "Go exec.Command(p).Output()".to_owned(),
            Row::PythonOutput => "CPython subprocess.run(capture_output)".to_owned(),
        }
    }

    /// A row that captures the child's output (`--output`).
    pub fn is_output(self) -> bool {
        OUTPUT_ROWS.contains(&self)
    }

    /// A row run by a peer program (Go or CPython) in its own process.
    pub fn is_peer(self) -> bool {
        matches!(
            self,
            Row::Go | Row::Python | Row::GoOutput | Row::PythonOutput
        )
    }

    /// A row that starts the program by a bare name looked up on `PATH`.
    pub fn by_name(self) -> bool {
        matches!(self, Row::CmdName | Row::StdName)
    }

    /// The row the `vs std` column divides by.
    pub fn std_ref(self) -> Row {
        if self.is_output() {
            Row::StdOutput
        } else if self.by_name() {
            Row::StdName
        } else {
            Row::Std
        }
    }

    /// The row the `vs floor` column divides by.
    pub fn floor_ref(self) -> Row {
        if self.is_output() {
            Row::LibcCloneOutput
        } else {
            Row::LibcClone
        }
    }
}
