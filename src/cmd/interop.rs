//! Conversions between forkexec and `std::process`: a std `Command` into a [`Cmd`], std's
//! child pipes into [`Stdio`], an [`Output`](super::Output) into std's, and Go's
//! `Cmd.String()` as `Display`.

use std::fmt;
use std::os::fd::OwnedFd;

use super::{Cmd, Stdio};

impl From<&std::process::Command> for Cmd {
    /// The program, arguments, environment changes and working directory of a std
    /// `Command`, so that adopting forkexec is one line. Its stdio is set to inherit, std's
    /// default (forkexec's own default is the null device); stdio set on the `Command`
    /// cannot be read from it, nor can `env_clear` (std has no getter for either), so set
    /// those on the `Cmd` again.
    ///
    /// # Examples
    /// ```
    /// let mut std_cmd = std::process::Command::new("sh");
    /// std_cmd.args(["-c", "echo $GREETING from $(pwd)"]).env("GREETING", "hi").current_dir("/");
    /// let mut cmd = forkexec::Cmd::from(&std_cmd);
    /// cmd.stdout(forkexec::Stdio::null()); // output() captures: stdout must not be set
    /// assert_eq!(cmd.output()?, b"hi from /\n");
    /// # Ok::<(), forkexec::Error>(())
    /// ```
    fn from(c: &std::process::Command) -> Cmd {
        let mut cmd = Cmd::new(c.get_program());
        cmd.args(c.get_args());
        for (k, v) in c.get_envs() {
            match v {
                Some(v) => cmd.env(k, v),
                None => cmd.env_remove(k),
            };
        }
        if let Some(d) = c.get_current_dir() {
            cmd.dir(d);
        }
        cmd.stdin(Stdio::inherit())
            .stdout(Stdio::inherit())
            .stderr(Stdio::inherit());
        cmd
    }
}

impl From<std::process::Command> for Cmd {
    /// As `From<&Command>`.
    ///
    /// # Examples
    /// ```
    /// let st = forkexec::Cmd::from(std::process::Command::new("true")).status()?;
    /// assert!(st.success());
    /// # Ok::<(), forkexec::Error>(())
    /// ```
    fn from(c: std::process::Command) -> Cmd {
        Cmd::from(&c)
    }
}

macro_rules! std_pipe_into_stdio {
    ($($t:ty),*) => {$(
        impl From<$t> for Stdio {
            /// A std child's pipe end as a forkexec child's stdio (a pipeline between the
            /// two worlds).
            fn from(p: $t) -> Stdio {
                Stdio::from(OwnedFd::from(p))
            }
        }
    )*};
}
std_pipe_into_stdio!(
    std::process::ChildStdin,
    std::process::ChildStdout,
    std::process::ChildStderr
);

impl fmt::Display for Cmd {
    /// The command as Go's `Cmd.String()` shows it: the program and its arguments,
    /// separated by spaces (lossy for non-UTF-8 bytes; for reading, not for a shell).
    ///
    /// # Examples
    /// ```
    /// let mut cmd = forkexec::Cmd::new("ls");
    /// cmd.args(["-l", "/tmp"]);
    /// assert_eq!(cmd.to_string(), "ls -l /tmp");
    /// ```
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.spec.program.to_string_lossy())?;
        for a in &self.spec.args {
            write!(f, " {}", a.to_string_lossy())?;
        }
        Ok(())
    }
}
