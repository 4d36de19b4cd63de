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
    CmdOutput,
    StdOutput,
    LibcCloneOutput,
}

pub const STATUS_ROWS: [Row; 10] = [
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
];

pub const OUTPUT_ROWS: [Row; 3] = [Row::CmdOutput, Row::StdOutput, Row::LibcCloneOutput];

impl Row {
    pub fn all() -> impl Iterator<Item = Row> {
        STATUS_ROWS.into_iter().chain(OUTPUT_ROWS)
    }

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
            Row::CmdOutput => "cmd_output",
            Row::StdOutput => "std_output",
            Row::LibcCloneOutput => "libc_clone_output",
        }
    }

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
            Row::CmdOutput => "forkexec Cmd::output() (Auto)".to_owned(),
            Row::StdOutput => "std Command::output()".to_owned(),
            Row::LibcCloneOutput => "raw libc clone+pipe floor".to_owned(),
        }
    }

    pub fn is_output(self) -> bool {
        matches!(self, Row::CmdOutput | Row::StdOutput | Row::LibcCloneOutput)
    }

    /// The row the `vs std` column divides by.
    pub fn std_ref(self) -> Row {
        if self.is_output() {
            Row::StdOutput
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
