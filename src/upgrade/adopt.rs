//! Taking the hand-over at start-up: reading the environment a previous generation (or
//! systemd) left, and taking ownership of the fds it names, all or none.

use std::os::fd::{OwnedFd, RawFd};

use super::StartedBy;
use super::env::{
    self, ENV_GENERATION, ENV_LISTEN_FDNAMES, ENV_LISTEN_FDS, ENV_LISTEN_PID, ENV_READY_FD,
    HANDOVER_VARS, parse_listen_env, parse_ready_fd,
};
use super::sock;
use crate::sys::upgrade::{InheritRight, Refused, remove_env_single_threaded};
use crate::{Error, Result};

/// What a hand-over gave this process.
pub(super) struct Adopted {
    pub(super) started_by: StartedBy,
    pub(super) generation: u64,
    pub(super) fds: Vec<(String, OwnedFd)>,
    pub(super) ready_pipe: Option<OwnedFd>,
}

impl Adopted {
    /// Nothing handed over: a fresh start.
    pub(super) fn fresh() -> Adopted {
        Adopted {
            started_by: StartedBy::Fresh,
            generation: 1,
            fds: Vec::new(),
            ready_pipe: None,
        }
    }
}

/// Takes the right to inherit (once per process), parses the hand-over environment and
/// takes ownership of its fds, all or none, marking them close-on-exec; then removes the
/// hand-over variables from the environment when the process is single-threaded.
///
/// On an error nothing is adopted, closed or removed, and the right is given back: a
/// refused hand-over does not count.
pub(super) fn adopt() -> Result<Adopted> {
    let Some(right) = InheritRight::acquire() else {
        return Err(Error::invalid(
            "Upgrader: another Upgrader of this process has inherited already (one \
             per process owns the inherited fds); build this one with inherit(false)",
        ));
    };
    let parsed = match parse() {
        Ok(p) => p,
        Err(e) => {
            right.release();
            return Err(e);
        }
    };
    let mut out = Adopted::fresh();
    if let Some((listen, ready_fd, generation)) = parsed {
        let raw: Vec<RawFd> = listen.iter().map(|(_, fd)| *fd).collect();
        let (fds, ready_pipe) = match right.take(&raw, ready_fd) {
            Ok(t) => t,
            Err((fd, why, right)) => {
                right.release();
                return Err(refused(fd, why, &listen));
            }
        };
        // Adopted: no other program this process starts may inherit them by accident.
        for fd in fds.iter().chain(ready_pipe.iter()) {
            let _ = sock::set_cloexec(fd);
        }
        out.started_by = if ready_pipe.is_some() {
            StartedBy::Upgrade
        } else {
            StartedBy::SocketActivation
        };
        out.generation = generation;
        out.fds = listen.into_iter().map(|(n, _)| n).zip(fds).collect();
        out.ready_pipe = ready_pipe;
    }
    // Whether or not there was a hand-over for this process, the right stays spent (it is
    // dropped here without being released): later upgraders must not inherit.
    //
    // The variables are not for any later program: removed while that is sound, before
    // any thread (the usual case, first thing in `main`); else they stay, and an upgrade
    // still sets them afresh for its child.
    let _ = remove_env_single_threaded(&HANDOVER_VARS);
    Ok(out)
}

/// The listening fds (named), the readiness fd and the generation of a hand-over meant
/// for this process; `None` when there is none.
type Parsed = (Vec<(String, RawFd)>, Option<RawFd>, u64);

/// Parses the hand-over environment of this process. A pure reading: nothing is taken.
fn parse() -> Result<Option<Parsed>> {
    let var = std::env::var_os;
    let (pid_v, fds_v, names_v) = (
        var(ENV_LISTEN_PID),
        var(ENV_LISTEN_FDS),
        var(ENV_LISTEN_FDNAMES),
    );
    let my_pid = std::process::id() as i32;
    if !env::listen_pid_matches(pid_v.as_deref(), my_pid)? {
        return Ok(None);
    }
    let listen = parse_listen_env(
        pid_v.as_deref(),
        fds_v.as_deref(),
        names_v.as_deref(),
        my_pid,
    )?;
    let ready_fd = parse_ready_fd(var(ENV_READY_FD).as_deref(), &listen)?;
    let generation = env::parse_generation(var(ENV_GENERATION).as_deref())?;
    Ok(Some((listen, ready_fd, generation)))
}

/// The error for an fd [`InheritRight::take`] refused.
fn refused(fd: RawFd, why: Refused, listen: &[(String, RawFd)]) -> Error {
    let name = listen
        .iter()
        .find(|(_, f)| *f == fd)
        .map_or(ENV_READY_FD, |(n, _)| n.as_str());
    Error::invalid(match why {
        Refused::NotOpen => format!("hand-over environment: fd {fd} ({name:?}) is not open"),
        Refused::NotInherited => format!(
            "hand-over environment: fd {fd} ({name:?}) was not inherited (it is \
             close-on-exec, so this process opened it); the hand-over names more fds \
             than it passed"
        ),
        Refused::NotPipe => format!("hand-over environment: {ENV_READY_FD}={fd} is not a pipe"),
        Refused::Duplicate => {
            format!("hand-over environment: fd {fd} ({name:?}) is named twice")
        }
    })
}
