//! The master's one thread: an epoll loop over every worker's pidfd and pipes.

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::os::fd::{AsFd, OwnedFd};
use std::panic::AssertUnwindSafe;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, MutexGuard, mpsc};
use std::time::{Duration, Instant};

use rustix::buffer::spare_capacity;
use rustix::event::epoll::{self, EventData, EventFlags};
use rustix::io::Errno;

use super::lines::Splitter;
use super::{Backoff, FinishFn, LineFn, Restart, Shared, WorkerState, lock};
use crate::error::{Error, Result};
use crate::process::ProcessState;
use crate::signal::Signal;
use crate::{Child, Cmd};

/// epoll data of the wakeup eventfd (worker data is `key << 2 | tag`, keys start at 1).
const WAKE: u64 = 0;
const TAG_PID: u64 = 0;
const TAG_OUT: u64 = 1;
const TAG_ERR: u64 = 2;
const TAG_IN: u64 = 3;

/// Size of the loop's one read buffer.
const SCRATCH: usize = 64 * 1024;
/// Reads of one pipe per readiness event, for fairness between workers.
const READS_PER_EVENT: usize = 4;
/// Reads of one pipe after its process exited (what it wrote is all in the pipe; a
/// grandchild that keeps writing must not hold the loop).
const READS_AT_EXIT: usize = 1024;
/// Period of the exit check for processes without a pidfd (kernels before 5.3).
const POLL_PERIOD: Duration = Duration::from_millis(50);
/// Longest single epoll wait (kernels before 5.11 refuse more than `i32::MAX` ms).
const MAX_WAIT: Duration = Duration::from_secs(3600);
/// The input buffer's capacity kept once drained.
const KEEP_INPUT: usize = 64 * 1024;

/// A request from the API to the loop.
pub(super) enum Msg {
    /// A worker whose first process was started by the caller.
    Add(Box<Worker>),
    /// The worker's input buffer has bytes to write.
    Flush(u64),
    /// Close the worker's stdin once its buffer is written.
    CloseInput(u64),
    /// Stop the worker (TERM, grace, KILL); answer `done` once it has ended.
    Stop {
        key: u64,
        id: Arc<str>,
        remove: bool,
        done: Option<mpsc::Sender<()>>,
    },
    /// Stop everything, then end the loop.
    Shutdown,
}

/// The bytes waiting for a worker's stdin, shared between the API (which appends) and
/// the loop (which writes them to the pipe).
#[derive(Debug)]
pub(super) struct Input {
    buf: Vec<u8>,
    off: usize,
    limit: usize,
    /// A process is running to take input.
    pub(super) running: bool,
    /// No more input: `close_input` was called or the pipe broke.
    pub(super) eof: bool,
    /// `close_input` was called for the current run (reset when a run starts).
    pub(super) closed: bool,
    /// A flush is requested or in progress (the loop clears it once the buffer is empty).
    queued: bool,
}

/// What [`Input::push`] did.
pub(super) enum Push {
    /// Buffered; the loop already has a flush pending.
    Buffered,
    /// Buffered; the loop must be told to flush.
    NeedsFlush,
}

impl Input {
    pub(super) fn new(limit: usize) -> Input {
        Input {
            buf: Vec::new(),
            off: 0,
            limit,
            running: false,
            eof: false,
            closed: false,
            queued: false,
        }
    }

    fn pending(&self) -> usize {
        self.buf.len() - self.off
    }

    /// Appends `line` and a newline, within the limit.
    pub(super) fn push(&mut self, line: &[u8]) -> std::result::Result<Push, i32> {
        if self.eof {
            return Err(libc::EPIPE);
        }
        if self.pending() + line.len() + 1 > self.limit {
            return Err(libc::ENOBUFS);
        }
        if self.off > 0 && self.off >= self.buf.len() / 2 {
            self.buf.drain(..self.off);
            self.off = 0;
        }
        self.buf.reserve(line.len() + 1);
        self.buf.extend_from_slice(line);
        self.buf.push(b'\n');
        if self.queued {
            Ok(Push::Buffered)
        } else {
            self.queued = true;
            Ok(Push::NeedsFlush)
        }
    }

    fn reset(&mut self, running: bool) {
        self.buf = Vec::new();
        self.off = 0;
        self.running = running;
        self.eof = !running;
        self.queued = false;
    }
}

/// How a worker's stderr is handled.
pub(super) enum ErrMode {
    Inherit,
    Null,
    Lines(LineFn),
}

/// A worker as the loop sees it: its command, callbacks, policy and current process.
pub(super) struct Worker {
    pub(super) key: u64,
    pub(super) id: Arc<str>,
    cmd: Cmd,
    restart: Restart,
    backoff: Backoff,
    grace: Duration,
    max_line: usize,
    on_line: LineFn,
    on_finish: FinishFn,
    on_stderr: Option<LineFn>,
    input: Arc<Mutex<Input>>,
    run: Option<Run>,
    /// When the restarts of the current window happened.
    restarts: VecDeque<Instant>,
    total_restarts: u32,
    timer: Option<Instant>,
    stopping: bool,
    remove_after: bool,
    waiters: Vec<mpsc::Sender<()>>,
    /// The state to report once the worker is over (after its last run).
    last: WorkerState,
    /// A callback panicked: no more callbacks but `on_finish`, no restart.
    broken: bool,
}

/// A running process of a worker and the parent's ends of its pipes.
pub(super) struct Run {
    child: Child,
    stdout: Option<Pipe>,
    stderr: Option<Pipe>,
    stdin: Option<OwnedFd>,
    stdin_armed: bool,
    pidfd_watched: bool,
    term_sent: bool,
}

struct Pipe {
    fd: OwnedFd,
    split: Splitter,
}

fn nonblocking(fd: &OwnedFd) -> Result<()> {
    rustix::io::ioctl_fionbio(fd, true).map_err(|e| Error::os(e.raw_os_error()))
}

impl Run {
    pub(super) fn pid(&self) -> i32 {
        self.child.pid()
    }

    /// Kills and reaps the process (used when it cannot be handed to the loop).
    pub(super) fn kill_and_reap(self) {
        let _ = self.child.kill();
        let _ = self.child.process().wait();
    }
}

/// Parameters of a new worker.
pub(super) struct WorkerSpec {
    pub(super) key: u64,
    pub(super) id: Arc<str>,
    pub(super) cmd: Cmd,
    pub(super) restart: Restart,
    pub(super) backoff: Backoff,
    pub(super) grace: Duration,
    pub(super) max_line: usize,
    pub(super) on_line: LineFn,
    pub(super) on_finish: FinishFn,
    pub(super) stderr: ErrMode,
    pub(super) input: Arc<Mutex<Input>>,
}

impl Worker {
    pub(super) fn new(spec: WorkerSpec) -> Worker {
        let WorkerSpec {
            key,
            id,
            mut cmd,
            restart,
            backoff,
            grace,
            max_line,
            on_line,
            on_finish,
            stderr,
            input,
        } = spec;
        let (err_stdio, on_stderr) = match stderr {
            ErrMode::Inherit => (crate::Stdio::inherit(), None),
            ErrMode::Null => (crate::Stdio::null(), None),
            ErrMode::Lines(f) => (crate::Stdio::piped(), Some(f)),
        };
        cmd.stdin(crate::Stdio::piped())
            .stdout(crate::Stdio::piped())
            .stderr(err_stdio);
        Worker {
            key,
            id,
            cmd,
            restart,
            backoff,
            grace,
            max_line,
            on_line,
            on_finish,
            on_stderr,
            input,
            run: None,
            restarts: VecDeque::new(),
            total_restarts: 0,
            timer: None,
            stopping: false,
            remove_after: false,
            waiters: Vec::new(),
            last: WorkerState::Restarting { restarts: 0 },
            broken: false,
        }
    }

    /// Starts a process of the command, its pipes non-blocking. On error nothing is left.
    pub(super) fn spawn(&mut self) -> Result<Run> {
        let mut child = self.cmd.start()?;
        let stdin = child.stdin.take().map(OwnedFd::from);
        let stdout = child.stdout.take().map(OwnedFd::from);
        let stderr = child.stderr.take().map(OwnedFd::from);
        let set = [&stdin, &stdout, &stderr]
            .into_iter()
            .flatten()
            .try_for_each(nonblocking);
        let run = Run {
            child,
            stdout: stdout.map(|fd| Pipe {
                fd,
                split: Splitter::default(),
            }),
            stderr: stderr.map(|fd| Pipe {
                fd,
                split: Splitter::default(),
            }),
            stdin,
            stdin_armed: false,
            pidfd_watched: false,
            term_sent: false,
        };
        if let Err(e) = set {
            run.kill_and_reap();
            return Err(e);
        }
        Ok(run)
    }

    pub(super) fn set_run(&mut self, run: Run) {
        self.run = Some(run);
    }

    pub(super) fn take_run(&mut self) -> Option<Run> {
        self.run.take()
    }
}

/// Runs a callback, catching a panic; `false` if it panicked.
fn guarded(f: impl FnOnce()) -> bool {
    std::panic::catch_unwind(AssertUnwindSafe(f)).is_ok()
}

fn data(key: u64, tag: u64) -> EventData {
    EventData::new_u64(key << 2 | tag)
}

/// The loop's state; lives on its thread.
pub(super) struct Loop {
    shared: Arc<Shared>,
    rx: mpsc::Receiver<Msg>,
    epoll: OwnedFd,
    workers: HashMap<u64, Worker>,
    timers: BTreeSet<(Instant, u64)>,
    scratch: Vec<u8>,
    shutting_down: bool,
    /// Running processes without a pidfd, checked every [`POLL_PERIOD`].
    unwatched: usize,
}

impl Loop {
    pub(super) fn new(shared: Arc<Shared>, rx: mpsc::Receiver<Msg>, epoll: OwnedFd) -> Loop {
        Loop {
            shared,
            rx,
            epoll,
            workers: HashMap::new(),
            timers: BTreeSet::new(),
            scratch: vec![0; SCRATCH],
            shutting_down: false,
            unwatched: 0,
        }
    }

    /// The loop: until shut down and every worker has ended.
    pub(super) fn run(mut self) {
        // No signal is handled on this thread; a SIGPIPE raised by a write to a worker
        // whose stdin closed stays pending here instead of killing the process (the
        // write fails with EPIPE). Children start with an empty mask regardless.
        crate::sys::block_app_signals();
        let mut events: Vec<epoll::Event> = Vec::with_capacity(256);
        if let Err(e) = epoll::add(
            &self.epoll,
            &self.shared.wake,
            EventData::new_u64(WAKE),
            EventFlags::IN,
        ) {
            // Without a wakeup nothing can reach the loop: refuse every request.
            eprintln!("forkexec::agent: cannot watch the wakeup eventfd: {e}");
            self.shared.closed.store(true, Ordering::SeqCst);
            return;
        }
        loop {
            self.drain_msgs();
            if self.shutting_down && self.workers.is_empty() {
                break;
            }
            let timeout = self.next_timeout();
            events.clear();
            let ts = timeout.map(|d| {
                rustix::event::Timespec::try_from(d).unwrap_or(rustix::event::Timespec {
                    tv_sec: 3600,
                    tv_nsec: 0,
                })
            });
            match epoll::wait(&self.epoll, spare_capacity(&mut events), ts.as_ref()) {
                Ok(_) => {}
                Err(Errno::INTR) => continue,
                Err(e) => {
                    eprintln!("forkexec::agent: epoll_wait: {e}");
                    std::thread::sleep(Duration::from_millis(10));
                    continue;
                }
            }
            for ev in &events {
                let d = ev.data;
                let d = d.u64();
                if d == WAKE {
                    let mut b = [0u8; 8];
                    let _ = rustix::io::read(&self.shared.wake, &mut b);
                    self.shared.wake_pending.store(false, Ordering::SeqCst);
                    continue;
                }
                let (key, tag) = (d >> 2, d & 3);
                match tag {
                    TAG_PID => self.reap(key),
                    TAG_OUT | TAG_ERR => self.read_pipe(key, tag == TAG_ERR),
                    _ => self.flush(key),
                }
            }
            self.fire_timers();
            if self.unwatched > 0 {
                self.poll_exits();
            }
        }
        self.final_drain();
    }

    /// The loop is ending (the master is closed). `start` holds the table lock from its
    /// check of `closed` to its send, so once the lock is taken here no worker can come in
    /// later: the ones that came in last are ended here, and nothing is left unreaped.
    fn final_drain(&mut self) {
        let table = lock(&self.shared.table);
        let rest: Vec<Msg> = self.rx.try_iter().collect();
        drop(table);
        for m in rest {
            match m {
                Msg::Add(mut w) => {
                    let Some(run) = w.run.take() else {
                        continue;
                    };
                    let _ = run.child.kill();
                    let res = run.child.process().wait();
                    drop(run);
                    lock(&w.input).reset(false);
                    let state = match &res {
                        Ok(st) => WorkerState::Exited(*st),
                        Err(e) => WorkerState::Failed(e.kind()),
                    };
                    self.set_state(&w, state);
                    let id = w.id.clone();
                    let on_finish = &mut w.on_finish;
                    guarded(|| on_finish(&id, res));
                }
                Msg::Stop { done: Some(d), .. } => {
                    let _ = d.send(());
                }
                _ => {}
            }
        }
    }

    fn next_timeout(&self) -> Option<Duration> {
        let now = Instant::now();
        let mut t = self
            .timers
            .first()
            .map(|&(at, _)| at.saturating_duration_since(now));
        if self.unwatched > 0 {
            t = Some(t.map_or(POLL_PERIOD, |d| d.min(POLL_PERIOD)));
        }
        Some(t.map_or(MAX_WAIT, |d| d.min(MAX_WAIT)))
    }

    fn drain_msgs(&mut self) {
        while let Ok(m) = self.rx.try_recv() {
            match m {
                Msg::Add(w) => self.add(*w),
                Msg::Flush(key) => self.flush(key),
                Msg::CloseInput(key) => self.close_input(key),
                Msg::Stop {
                    key,
                    id,
                    remove,
                    done,
                } => self.stop(key, &id, remove, done),
                Msg::Shutdown => {
                    self.shutting_down = true;
                    let keys: Vec<u64> = self.workers.keys().copied().collect();
                    for k in keys {
                        self.begin_stop(k);
                    }
                }
            }
        }
    }

    fn set_state(&self, w: &Worker, state: WorkerState) {
        let mut t = lock(&self.shared.table);
        if let Some(e) = t.get_mut(&*w.id) {
            if e.key == w.key {
                e.state = state;
            }
        }
    }

    fn set_timer(&mut self, key: u64, at: Option<Instant>) {
        let Some(w) = self.workers.get_mut(&key) else {
            return;
        };
        if let Some(old) = w.timer.take() {
            self.timers.remove(&(old, key));
        }
        if let Some(at) = at {
            // Keys are unique per worker, so (at, key) is unique in the set.
            self.timers.insert((at, key));
            w.timer = Some(at);
        }
    }

    /// Watches a new process: pidfd, stdout, stderr.
    fn watch(&mut self, key: u64) -> Result<()> {
        let Some(run) = self.workers.get_mut(&key).and_then(|w| w.run.as_mut()) else {
            return Ok(());
        };
        let watched = match run.child.process().pidfd() {
            Some(p) => epoll::add(&self.epoll, p, data(key, TAG_PID), EventFlags::IN).is_ok(),
            None => false,
        };
        run.pidfd_watched = watched;
        if !watched {
            self.unwatched += 1;
        }
        for (p, tag) in [(&run.stdout, TAG_OUT), (&run.stderr, TAG_ERR)] {
            if let Some(p) = p {
                epoll::add(&self.epoll, &p.fd, data(key, tag), EventFlags::IN)
                    .map_err(|e| Error::os(e.raw_os_error()))?;
            }
        }
        Ok(())
    }

    fn add(&mut self, w: Worker) {
        let key = w.key;
        self.workers.insert(key, w);
        if let Err(e) = self.watch(key) {
            // The pipes cannot be watched (epoll limits): end the process now.
            if let Some(run) = self.workers.get(&key).and_then(|w| w.run.as_ref()) {
                let _ = run.child.kill();
            }
            eprintln!("forkexec::agent: cannot watch a worker's pipes: {e}");
        }
        if self.shutting_down {
            self.begin_stop(key);
        }
        self.flush(key);
    }

    /// Writes as much of the input buffer as the pipe takes; watches for writability
    /// while some is left; closes stdin once drained after `close_input`.
    fn flush(&mut self, key: u64) {
        let Some(w) = self.workers.get_mut(&key) else {
            return;
        };
        let mut inp = lock(&w.input);
        let Some(run) = w.run.as_mut() else {
            return;
        };
        pump(&self.epoll, key, run, &mut inp);
    }

    fn close_input(&mut self, key: u64) {
        let Some(w) = self.workers.get_mut(&key) else {
            return;
        };
        let mut inp = lock(&w.input);
        let Some(run) = w.run.as_mut() else {
            return;
        };
        if inp.pending() == 0 {
            close_stdin(&self.epoll, run);
        } else {
            // The flush in progress closes it once the buffer is written.
            pump(&self.epoll, key, run, &mut inp);
        }
    }

    fn read_pipe(&mut self, key: u64, is_err: bool) {
        let Some(w) = self.workers.get_mut(&key) else {
            return;
        };
        let eof = read_some(w, is_err, &mut self.scratch, READS_PER_EVENT);
        if eof {
            end_pipe(&self.epoll, w, is_err);
        }
        if w.broken && !w.stopping {
            self.begin_stop(key);
        }
    }

    fn reap(&mut self, key: u64) {
        let Some(run) = self.workers.get(&key).and_then(|w| w.run.as_ref()) else {
            return;
        };
        let res = match run.child.process().try_wait() {
            Ok(None) => return,
            Ok(Some(st)) => Ok(st),
            Err(e) => Err(e),
        };
        self.end_run(key, res);
    }

    fn poll_exits(&mut self) {
        let keys: Vec<u64> = self
            .workers
            .iter()
            .filter(|(_, w)| w.run.as_ref().is_some_and(|r| !r.pidfd_watched))
            .map(|(&k, _)| k)
            .collect();
        for k in keys {
            self.reap(k);
        }
    }

    /// The process of `key` has been reaped: deliver what it left in its pipes, close
    /// them, report, then restart or retire the worker.
    fn end_run(&mut self, key: u64, res: Result<ProcessState>) {
        let Some(mut w) = self.workers.remove(&key) else {
            return;
        };
        if let Some(timer) = w.timer.take() {
            self.timers.remove(&(timer, key));
        }
        for is_err in [false, true] {
            read_some(&mut w, is_err, &mut self.scratch, READS_AT_EXIT);
            end_pipe(&self.epoll, &mut w, is_err);
        }
        if let Some(mut run) = w.run.take() {
            close_stdin(&self.epoll, &mut run);
            if run.pidfd_watched {
                if let Some(p) = run.child.process().pidfd() {
                    let _ = epoll::delete(&self.epoll, p);
                }
            } else {
                self.unwatched -= 1;
            }
            // Dropping the run closes the pidfd: the master keeps nothing of the process.
        }
        lock(&w.input).reset(false);
        self.ended(w, res);
    }

    /// A run is over (or a restart failed to spawn): apply the restart policy, report.
    fn ended(&mut self, mut w: Worker, res: Result<ProcessState>) {
        let key = w.key;
        let failed = res.as_ref().map_or(true, |st| !st.success());
        w.last = match &res {
            Ok(st) => WorkerState::Exited(*st),
            Err(e) => WorkerState::Failed(e.kind()),
        };
        let wanted = !w.stopping
            && !self.shutting_down
            && !w.broken
            && match w.restart {
                Restart::Never => false,
                Restart::OnFailure => failed,
                Restart::Always => true,
            };
        let restart_at = if wanted {
            next_restart(&w.backoff, &mut w.restarts, Instant::now())
        } else {
            None
        };
        let state = match restart_at {
            Some(_) => WorkerState::Restarting {
                restarts: w.total_restarts + 1,
            },
            None => w.last,
        };
        self.set_state(&w, state);
        let id = w.id.clone();
        let on_finish = &mut w.on_finish;
        guarded(|| on_finish(&id, res));
        match restart_at {
            Some(at) => {
                self.workers.insert(key, w);
                self.set_timer(key, Some(at));
            }
            None => self.retire(w),
        }
    }

    /// The worker is over for good: answer its waiters, forget it.
    fn retire(&mut self, w: Worker) {
        if w.remove_after {
            let mut t = lock(&self.shared.table);
            if t.get(&*w.id).is_some_and(|e| e.key == w.key) {
                t.remove(&*w.id);
            }
        }
        for d in &w.waiters {
            let _ = d.send(());
        }
        // Dropping `w` drops its command and callbacks (on this thread).
    }

    fn begin_stop(&mut self, key: u64) {
        let Some(w) = self.workers.get_mut(&key) else {
            return;
        };
        w.stopping = true;
        let grace = w.grace;
        match w.run.as_mut() {
            Some(run) => {
                if run.term_sent {
                    return;
                }
                run.term_sent = true;
                let pid = run.pid();
                if grace.is_zero() {
                    let _ = run.child.kill();
                } else {
                    let _ = run.child.process().signal(Signal::TERM);
                }
                let at = Instant::now().checked_add(grace);
                self.set_state(
                    self.workers.get(&key).expect("present"),
                    WorkerState::Stopping { pid },
                );
                if !grace.is_zero() {
                    self.set_timer(key, at);
                }
            }
            None => {
                // Waiting out a back-off: no process to stop.
                self.set_timer(key, None);
                let w = self.workers.remove(&key).expect("present");
                self.set_state(&w, w.last);
                self.retire(w);
            }
        }
    }

    fn stop(&mut self, key: u64, id: &str, remove: bool, done: Option<mpsc::Sender<()>>) {
        match self.workers.get_mut(&key) {
            Some(w) => {
                w.remove_after |= remove;
                w.waiters.extend(done);
                self.begin_stop(key);
            }
            None => {
                if remove {
                    let mut t = lock(&self.shared.table);
                    if t.get(id).is_some_and(|e| e.key == key) {
                        t.remove(id);
                    }
                }
                if let Some(d) = done {
                    let _ = d.send(());
                }
            }
        }
    }

    fn fire_timers(&mut self) {
        let now = Instant::now();
        while let Some(&(at, key)) = self.timers.first() {
            if at > now {
                break;
            }
            self.timers.pop_first();
            let Some(w) = self.workers.get_mut(&key) else {
                continue;
            };
            if w.timer != Some(at) {
                continue;
            }
            w.timer = None;
            match w.run.as_ref() {
                // The grace period is over.
                Some(run) => {
                    let _ = run.child.kill();
                }
                None if !w.stopping => self.restart(key),
                None => {}
            }
        }
    }

    fn restart(&mut self, key: u64) {
        let Some(w) = self.workers.get_mut(&key) else {
            return;
        };
        match w.spawn() {
            Ok(run) => {
                w.total_restarts += 1;
                let pid = run.pid();
                w.run = Some(run);
                lock(&w.input).reset(true);
                let w = self.workers.get(&key).expect("present");
                self.set_state(w, WorkerState::Running { pid });
                if let Err(e) = self.watch(key) {
                    if let Some(run) = self.workers.get(&key).and_then(|w| w.run.as_ref()) {
                        let _ = run.child.kill();
                    }
                    eprintln!("forkexec::agent: cannot watch a worker's pipes: {e}");
                }
            }
            Err(e) => {
                w.total_restarts += 1;
                let w = self.workers.remove(&key).expect("present");
                self.ended(w, Err(e));
            }
        }
    }
}

/// When a worker whose process ended at `now` is started again: `now` plus its back-off
/// delay, `initial * 2^n` (at most `max`) for the `n`-th restart of the window; `None`
/// when `max_restarts` restarts already happened within the last `window` (the master
/// gives up). `restarts` holds the times of the window's restarts; a restart is recorded.
fn next_restart(b: &Backoff, restarts: &mut VecDeque<Instant>, now: Instant) -> Option<Instant> {
    while let Some(&t) = restarts.front() {
        if now.saturating_duration_since(t) >= b.window {
            restarts.pop_front();
        } else {
            break;
        }
    }
    let n = restarts.len();
    if n >= b.max_restarts as usize {
        return None;
    }
    let factor = 1u32 << n.min(30);
    let delay = b.initial.saturating_mul(factor).min(b.max);
    restarts.push_back(now);
    // A delay past what `Instant` can hold is as good as never: a year, not at once.
    Some(
        now.checked_add(delay)
            .or_else(|| now.checked_add(FAR))
            .unwrap_or(now),
    )
}

/// Where a restart goes whose delay does not fit in an `Instant`.
const FAR: Duration = Duration::from_secs(365 * 24 * 3600);

/// Reads the worker's stdout or stderr (at most `reads` times), delivering lines; `true`
/// at end of file (or on a read error, which ends the stream too).
fn read_some(w: &mut Worker, is_err: bool, scratch: &mut [u8], reads: usize) -> bool {
    let Worker {
        id,
        run,
        on_line,
        on_stderr,
        max_line,
        broken,
        ..
    } = w;
    let Some(run) = run.as_mut() else {
        return false;
    };
    let (pipe, mut cb) = if is_err {
        (run.stderr.as_mut(), on_stderr.as_mut())
    } else {
        (run.stdout.as_mut(), Some(on_line))
    };
    let Some(pipe) = pipe else {
        return false;
    };
    let mut emit = |line: &[u8]| {
        if let (Some(cb), false) = (cb.as_deref_mut(), *broken) {
            if !guarded(|| cb(id, line)) {
                *broken = true;
            }
        }
    };
    for _ in 0..reads {
        match rustix::io::read(&pipe.fd, &mut *scratch) {
            Ok(0) => {
                pipe.split.finish(&mut emit);
                return true;
            }
            Ok(n) => {
                pipe.split.feed(&scratch[..n], *max_line, &mut emit);
                if n < scratch.len() && reads == READS_PER_EVENT {
                    return false;
                }
            }
            Err(Errno::INTR) => {}
            Err(Errno::AGAIN) => return false,
            Err(_) => {
                pipe.split.finish(&mut emit);
                return true;
            }
        }
    }
    false
}

/// Stops watching and closes the worker's stdout or stderr, delivering a last line
/// without newline.
fn end_pipe(epoll: &OwnedFd, w: &mut Worker, is_err: bool) {
    let Some(run) = w.run.as_mut() else {
        return;
    };
    let slot = if is_err {
        &mut run.stderr
    } else {
        &mut run.stdout
    };
    if let Some(mut p) = slot.take() {
        let _ = epoll::delete(epoll, &p.fd);
        let (id, broken) = (&w.id, &mut w.broken);
        let cb = if is_err {
            w.on_stderr.as_mut()
        } else {
            Some(&mut w.on_line)
        };
        if let (Some(cb), false) = (cb, *broken) {
            let mut emit = |line: &[u8]| {
                if !*broken && !guarded(|| cb(id, line)) {
                    *broken = true;
                }
            };
            p.split.finish(&mut emit);
        }
    }
}

fn close_stdin(epoll: &OwnedFd, run: &mut Run) {
    if let Some(fd) = run.stdin.take() {
        if run.stdin_armed {
            let _ = epoll::delete(epoll, &fd);
            run.stdin_armed = false;
        }
    }
}

/// Writes the input buffer to the pipe until it is empty or the pipe is full.
fn pump(epoll: &OwnedFd, key: u64, run: &mut Run, inp: &mut MutexGuard<'_, Input>) {
    let inp = &mut **inp;
    loop {
        let Some(fd) = run.stdin.as_ref() else {
            inp.buf = Vec::new();
            inp.off = 0;
            inp.queued = false;
            return;
        };
        if inp.off >= inp.buf.len() {
            break;
        }
        match rustix::io::write(fd, &inp.buf[inp.off..]) {
            Ok(n) => inp.off += n,
            Err(Errno::INTR) => {}
            Err(Errno::AGAIN) => {
                if !run.stdin_armed {
                    match epoll::add(epoll, fd.as_fd(), data(key, TAG_IN), EventFlags::OUT) {
                        Ok(()) => run.stdin_armed = true,
                        Err(_) => {
                            // Cannot wait for room: give up on this worker's input.
                            inp.eof = true;
                            close_stdin(epoll, run);
                        }
                    }
                }
                return;
            }
            Err(_) => {
                // EPIPE: the worker closed its stdin (or exited). Nothing more can go in.
                inp.eof = true;
                close_stdin(epoll, run);
            }
        }
    }
    if inp.buf.capacity() > KEEP_INPUT {
        inp.buf = Vec::new();
    } else {
        inp.buf.clear();
    }
    inp.off = 0;
    inp.queued = false;
    if run.stdin_armed {
        if let Some(fd) = run.stdin.as_ref() {
            let _ = epoll::delete(epoll, fd);
        }
        run.stdin_armed = false;
    }
    if inp.eof {
        close_stdin(epoll, run);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    /// The delays the schedule gives at `at` (offsets from one start), `None` for "gave up".
    fn delays(b: &Backoff, at: &[Duration]) -> Vec<Option<Duration>> {
        let t0 = Instant::now();
        let mut restarts = VecDeque::new();
        at.iter()
            .map(|&d| {
                let now = t0 + d;
                next_restart(b, &mut restarts, now).map(|r| r - now)
            })
            .collect()
    }

    #[test]
    fn backoff_doubles_then_gives_up() {
        let b = Backoff {
            initial: 50 * MS,
            max: Duration::from_secs(1),
            max_restarts: 3,
            window: Duration::from_secs(60),
        };
        let s = Duration::from_secs(1);
        assert_eq!(
            delays(&b, &[Duration::ZERO, s, 2 * s, 3 * s, 4 * s]),
            [Some(50 * MS), Some(100 * MS), Some(200 * MS), None, None]
        );
        // The first restart leaves the window: one more, at the third step's delay.
        assert_eq!(
            delays(&b, &[Duration::ZERO, s, 2 * s, 60 * s, 60 * s]),
            [
                Some(50 * MS),
                Some(100 * MS),
                Some(200 * MS),
                Some(200 * MS),
                None
            ]
        );
        // A worker that ran well for a window starts again from `initial`.
        assert_eq!(
            delays(&b, &[Duration::ZERO, s, 2 * s, 200 * s]),
            [Some(50 * MS), Some(100 * MS), Some(200 * MS), Some(50 * MS)]
        );
    }

    #[test]
    fn backoff_is_capped_and_bounded() {
        let b = Backoff {
            initial: 400 * MS,
            max: Duration::from_secs(1),
            max_restarts: 40,
            window: Duration::from_secs(3600),
        };
        let at: Vec<Duration> = (0..40).map(|i| i * MS).collect();
        let d = delays(&b, &at);
        assert_eq!(
            d[..4],
            [Some(400 * MS), Some(800 * MS), Some(b.max), Some(b.max)]
        );
        assert!(d[2..].iter().all(|d| *d == Some(b.max)), "{d:?}");
        let huge = Backoff {
            initial: Duration::MAX,
            max: Duration::MAX,
            ..b
        };
        // Not "at once" when the delay overflows the clock.
        assert!(delays(&huge, &at).iter().all(|d| d.unwrap() >= FAR));
        let never = Backoff {
            max_restarts: 0,
            ..b
        };
        assert_eq!(delays(&never, &[Duration::ZERO]), [None]);
    }
}
