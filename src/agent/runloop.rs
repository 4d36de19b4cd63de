//! The master's one thread: an epoll loop over every worker's pidfd and pipes.

use std::cell::{Cell, RefCell};
use std::collections::{BTreeSet, HashMap};
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::atomic::Ordering;
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

use rustix::buffer::spare_capacity;
use rustix::event::epoll::{self, EventData, EventFlags};
use rustix::io::Errno;

use super::input::{InputCell, pump};
use super::master::Shared;
use super::options::next_restart;
use super::worker::{ExitWatch, Phase, READS_PER_EVENT, Run, Worker, guarded};
use super::{Finish, Restart, WorkerState, lock};
use crate::{Error, ErrorKind, ProcessState, Result, Signal};

/// epoll data of the wakeup eventfd (worker data is `key << 2 | tag`, keys start at 1).
const WAKE: u64 = 0;
const TAG_PID: u64 = 0;
const TAG_OUT: u64 = 1;
const TAG_ERR: u64 = 2;
pub(super) const TAG_IN: u64 = 3;

/// Size of the loop's one read buffer.
const SCRATCH: usize = 64 * 1024;
/// Reads of one pipe after its process exited (what it wrote is all in the pipe; a
/// grandchild that keeps writing must not hold the loop).
const READS_AT_EXIT: usize = 1024;
/// Period of the exit check for processes without a pidfd (kernels before 5.3).
const POLL_PERIOD: Duration = Duration::from_millis(50);
/// Longest single epoll wait (kernels before 5.11 refuse more than `i32::MAX` ms).
const MAX_WAIT: Duration = Duration::from_secs(3600);

thread_local! {
    /// The address of the [`Shared`] whose loop runs on this thread (0: none), and which
    /// of its loops.
    static LOOP_OF: Cell<(usize, usize)> = const { Cell::new((0, 0)) };
    /// Workers whose queue a callback added to: written right after the callback returns,
    /// with no request through the channel and no wakeup.
    static DIRTY: RefCell<Vec<u64>> = const { RefCell::new(Vec::new()) };
    /// The worker whose output callbacks run now: its id, key and queue, so that a reply
    /// to it (the common case) needs no lookup in the master's table.
    static CALLER: RefCell<Option<Caller>> = const { RefCell::new(None) };
}

/// A worker's id, key and input queue.
type Caller = (Arc<str>, u64, Arc<InputCell>);

/// From a callback (on the loop thread): the key and queue of worker `id` when it is the
/// one whose output is being delivered.
pub(super) fn caller(id: &str) -> Option<(u64, Arc<InputCell>)> {
    CALLER.with(|c| {
        c.borrow()
            .as_ref()
            .filter(|(cid, _, _)| **cid == *id)
            .map(|(_, key, cell)| (*key, cell.clone()))
    })
}

/// A [`HashMap`] hasher for the loop's worker keys: they are ours (1, 2, 3, ...), so a
/// multiplication spreads them well enough, at a fraction of SipHash's cost.
#[derive(Default, Clone, Copy)]
pub(super) struct KeyHasher(u64);

impl Hasher for KeyHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        // Not used by `u64` keys; kept correct for any other.
        for &b in bytes {
            self.0 = (self.0.rotate_left(5) ^ u64::from(b)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }
    fn write_u64(&mut self, k: u64) {
        // The high bits folded down: the keys of one loop of `with_loops(2^m)` share
        // their low m bits, which the table's bucket index takes.
        let h = k.wrapping_mul(0x9E37_79B9_7F4A_7C15);
        self.0 = h ^ (h >> 32);
    }
}

type Workers = HashMap<u64, Worker, BuildHasherDefault<KeyHasher>>;

/// Whether the calling thread is one of the loop threads of `shared`.
pub(super) fn on_loop_of(shared: &Shared) -> bool {
    LOOP_OF.with(|c| c.get().0 == shared as *const Shared as usize)
}

/// Whether the calling thread is loop `ix` of `shared`.
pub(super) fn on_loop(shared: &Shared, ix: usize) -> bool {
    LOOP_OF.with(|c| c.get() == (shared as *const Shared as usize, ix))
}

/// From a callback (on the loop thread): worker `key`'s queue has lines to write.
pub(super) fn mark_dirty(key: u64) {
    DIRTY.with(|d| d.borrow_mut().push(key));
}

/// A request from the API to the loop.
pub(super) enum Msg {
    /// A worker whose first process was started by the caller.
    Add(Box<Worker>),
    /// The worker's queue has lines to write, or its input was closed.
    Flush(u64),
    /// Stop the worker (TERM, grace, KILL); answer `done` once it is over.
    Stop {
        key: u64,
        id: Arc<str>,
        remove: bool,
        done: Option<mpsc::Sender<()>>,
    },
    /// Stop everything, then end the loop.
    Shutdown,
}

pub(super) fn data(key: u64, tag: u64) -> u64 {
    key << 2 | tag
}

/// The loop's state; lives on its thread.
pub(super) struct Loop {
    shared: Arc<Shared>,
    /// Which of the master's loops this is (`shared.loops[ix]`: its epoll set, eventfd).
    ix: usize,
    rx: mpsc::Receiver<Msg>,
    workers: Workers,
    /// Grace periods and back-offs, by deadline.
    timers: BTreeSet<(Instant, u64)>,
    scratch: Vec<u8>,
    shutting_down: bool,
    /// Running processes without a pidfd, checked every [`POLL_PERIOD`].
    polled: usize,
}

impl Loop {
    pub(super) fn new(shared: Arc<Shared>, ix: usize, rx: mpsc::Receiver<Msg>) -> Loop {
        Loop {
            shared,
            ix,
            rx,
            workers: Workers::default(),
            timers: BTreeSet::new(),
            scratch: vec![0; SCRATCH],
            shutting_down: false,
            polled: 0,
        }
    }

    /// The loop: until shut down and every worker is over.
    pub(super) fn run(mut self) {
        // No signal is handled on this thread; a SIGPIPE raised by a write to a worker
        // whose stdin closed stays pending here instead of killing the process (the
        // write fails with EPIPE). Children start with an empty mask regardless.
        crate::sys::block_app_signals();
        LOOP_OF.with(|c| c.set((Arc::as_ptr(&self.shared) as usize, self.ix)));
        let mut events: Vec<epoll::Event> = Vec::with_capacity(256);
        let wake = EventData::new_u64(WAKE);
        if let Err(e) = epoll::add(
            &self.shared.loops[self.ix].epoll,
            &self.shared.loops[self.ix].wake,
            wake,
            EventFlags::IN,
        ) {
            // Without a wakeup nothing can reach the loop: refuse every request.
            eprintln!("forkexec::agent: cannot watch the wakeup eventfd: {e}");
            self.shared.closed.store(true, Ordering::SeqCst);
            // A worker handed over before `closed` was set is ended here, not dropped.
            self.final_drain();
            return;
        }
        let mut dirty = Vec::new();
        loop {
            self.drain_msgs();
            self.flush_dirty(&mut dirty);
            if self.shutting_down && self.workers.is_empty() {
                break;
            }
            let ts = self.next_timeout().try_into().ok();
            events.clear();
            match epoll::wait(
                &self.shared.loops[self.ix].epoll,
                spare_capacity(&mut events),
                ts.as_ref(),
            ) {
                Ok(_) => {}
                Err(Errno::INTR) => continue,
                Err(e) => {
                    eprintln!("forkexec::agent: epoll_wait: {e}");
                    std::thread::sleep(Duration::from_millis(10));
                    continue;
                }
            }
            for ev in &events {
                let d = ev.data.u64();
                if d == WAKE {
                    let mut b = [0u8; 8];
                    let _ = rustix::io::read(&self.shared.loops[self.ix].wake, &mut b);
                    self.shared.loops[self.ix]
                        .wake_pending
                        .store(false, Ordering::SeqCst);
                    continue;
                }
                let (key, tag) = (d >> 2, d & 3);
                match tag {
                    TAG_PID => self.reap(key),
                    TAG_OUT | TAG_ERR => self.read_pipe(key, tag == TAG_ERR),
                    _ => self.flush(key),
                }
                // What the callbacks just queued goes out now, while the loop reads on.
                self.flush_dirty(&mut dirty);
            }
            self.fire_timers();
            if self.polled > 0 {
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
                    let phase = std::mem::replace(&mut w.phase, Phase::Backoff { at: now() });
                    let Phase::Running(run) = phase else {
                        continue;
                    };
                    let pid = run.pid();
                    let res = run.kill_and_reap();
                    self.report(&mut w, res, Some(pid), None);
                }
                Msg::Stop { done: Some(d), .. } => {
                    let _ = d.send(());
                }
                _ => {}
            }
        }
    }

    fn next_timeout(&self) -> Duration {
        // No clock read while no timer is set (the busy case: lines only).
        let mut t = self
            .timers
            .first()
            .map(|&(at, _)| at.saturating_duration_since(now()));
        if self.polled > 0 {
            t = Some(t.map_or(POLL_PERIOD, |d| d.min(POLL_PERIOD)));
        }
        t.map_or(MAX_WAIT, |d| d.min(MAX_WAIT))
    }

    fn drain_msgs(&mut self) {
        while let Ok(m) = self.rx.try_recv() {
            match m {
                Msg::Add(w) => self.add(*w),
                Msg::Flush(key) => self.flush(key),
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
                        self.begin_stop(k, false);
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

    /// Watches a new process: pidfd, stdout, stderr.
    fn watch(&mut self, key: u64) -> Result<()> {
        let Some(run) = self.workers.get_mut(&key).and_then(|w| w.phase.run_mut()) else {
            return Ok(());
        };
        let by_pidfd = match run.child.process().pidfd() {
            Some(p) => epoll::add(
                &self.shared.loops[self.ix].epoll,
                p,
                EventData::new_u64(data(key, TAG_PID)),
                EventFlags::IN,
            )
            .is_ok(),
            None => false,
        };
        run.exit = if by_pidfd {
            ExitWatch::Pidfd
        } else {
            self.polled += 1;
            ExitWatch::Poll
        };
        for (p, tag) in [(&run.stdout, TAG_OUT), (&run.stderr, TAG_ERR)] {
            if let Some(p) = p {
                epoll::add(
                    &self.shared.loops[self.ix].epoll,
                    &p.fd,
                    EventData::new_u64(data(key, tag)),
                    EventFlags::IN,
                )
                .map_err(|e| Error::os(e.raw_os_error()))?;
            }
        }
        Ok(())
    }

    /// Watches the new process of `key`, killing it if that fails (it is then reaped as
    /// any other), and writes its queue.
    fn watch_or_kill(&mut self, key: u64) {
        if let Err(e) = self.watch(key) {
            // The pipes cannot be watched (epoll limits): end the process now.
            if let Some(run) = self.workers.get(&key).and_then(|w| w.phase.run()) {
                let _ = run.child.kill();
            }
            eprintln!("forkexec::agent: cannot watch a worker's pipes: {e}");
        }
        self.flush(key);
    }

    fn add(&mut self, w: Worker) {
        let key = w.key;
        self.workers.insert(key, w);
        self.watch_or_kill(key);
        if self.shutting_down {
            self.begin_stop(key, false);
        }
    }

    /// Writes as much of the queue as the pipe takes; watches for room while some is
    /// left; closes stdin once drained after `close_input`.
    fn flush(&mut self, key: u64) {
        if let Some(w) = self.workers.get(&key) {
            pump(&self.shared.loops[self.ix].epoll, &w.input);
        }
    }

    /// Writes the queues callbacks added to (`spare` keeps the list's memory).
    fn flush_dirty(&mut self, spare: &mut Vec<u64>) {
        DIRTY.with(|d| std::mem::swap(&mut *d.borrow_mut(), spare));
        for key in spare.drain(..) {
            self.flush(key);
        }
    }

    fn read_pipe(&mut self, key: u64, is_err: bool) {
        let Some(w) = self.workers.get_mut(&key) else {
            return;
        };
        CALLER.with(|c| *c.borrow_mut() = Some((w.id.clone(), key, w.input.clone())));
        let ended = w.read(is_err, &mut self.scratch, READS_PER_EVENT);
        CALLER.with(|c| c.borrow_mut().take());
        if ended {
            if let Some(fd) = w.end_pipe(is_err) {
                let _ = epoll::delete(&self.shared.loops[self.ix].epoll, &fd);
            }
        }
        if !w.healthy() && matches!(w.phase, Phase::Running(_)) {
            self.begin_stop(key, false);
        }
    }

    fn reap(&mut self, key: u64) {
        let Some(run) = self.workers.get(&key).and_then(|w| w.phase.run()) else {
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
            .filter(|(_, w)| w.phase.run().is_some_and(|r| r.exit == ExitWatch::Poll))
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
        if let Some(at) = w.phase.timer() {
            self.timers.remove(&(at, key));
        }
        for is_err in [false, true] {
            w.read(is_err, &mut self.scratch, READS_AT_EXIT);
            if let Some(fd) = w.end_pipe(is_err) {
                let _ = epoll::delete(&self.shared.loops[self.ix].epoll, &fd);
            }
        }
        let (run, stopping): (Run, Option<bool>) =
            match std::mem::replace(&mut w.phase, Phase::Backoff { at: now() }) {
                Phase::Running(run) => (run, None),
                Phase::Stopping { run, remove, .. } => (run, Some(remove)),
                Phase::Backoff { .. } => return,
            };
        match run.exit {
            ExitWatch::Pidfd => {
                if let Some(p) = run.child.process().pidfd() {
                    let _ = epoll::delete(&self.shared.loops[self.ix].epoll, p);
                }
            }
            ExitWatch::Poll => self.polled -= 1,
        }
        let pid = run.pid();
        // Dropping the run closes the pidfd: the master keeps nothing of the process.
        drop(run);
        self.ended(w, res, Some(pid), stopping);
    }

    /// A process is over (or a restart failed to spawn): apply the restart policy,
    /// report. `stopping`: it was stopped (`Some(remove)`), so it is not restarted.
    fn ended(
        &mut self,
        mut w: Worker,
        res: Result<ProcessState>,
        pid: Option<i32>,
        stopping: Option<bool>,
    ) {
        let key = w.key;
        let failed = res.as_ref().map_or(true, |st| !st.success());
        w.last = match &res {
            Ok(st) => WorkerState::Exited(*st),
            Err(e) => WorkerState::Failed(e.kind()),
        };
        let wanted = stopping.is_none()
            && !self.shutting_down
            && w.healthy()
            && match w.restart {
                Restart::Never => false,
                Restart::OnFailure => failed,
                Restart::Always => true,
            };
        let restart_at = if wanted {
            next_restart(&w.backoff, &mut w.restarts, now())
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
        self.report(&mut w, res, pid, restart_at);
        match restart_at {
            Some(at) => {
                w.phase = Phase::Backoff { at };
                self.timers.insert((at, key));
                self.workers.insert(key, w);
            }
            None => self.retire(w, stopping == Some(true)),
        }
    }

    /// Calls `on_finish` with what became of the process's input: carried over to the
    /// restart at `restart_at`, or handed back.
    fn report(
        &self,
        w: &mut Worker,
        result: Result<ProcessState>,
        pid: Option<i32>,
        restart_at: Option<Instant>,
    ) {
        let (lines_written, bytes_written, unsent) = {
            let mut g = w.input.lock();
            let (lines, bytes) = g.end_process(&self.shared.loops[self.ix].epoll);
            let unsent = match restart_at {
                Some(_) => {
                    g.restart();
                    Vec::new()
                }
                None => g.hand_back(),
            };
            w.input.notify(&g);
            (lines, bytes, unsent)
        };
        let end = Finish {
            result,
            pid,
            lines_written,
            bytes_written,
            restart: restart_at.is_some(),
            unsent,
        };
        let id = w.id.clone();
        let on_finish = &mut w.on_finish;
        guarded(|| on_finish(&id, end));
    }

    /// The worker is over for good: answer its waiters, forget it.
    fn retire(&mut self, w: Worker, remove: bool) {
        if remove {
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

    /// Stops the worker: `SIGTERM` (or `SIGKILL` without a grace period) to its process,
    /// or, during a back-off, cancels the restart (reported to `on_finish` as
    /// `ProcessDone`, with the queue handed back).
    fn begin_stop(&mut self, key: u64, remove: bool) {
        let Some(w) = self.workers.get_mut(&key) else {
            return;
        };
        match &mut w.phase {
            Phase::Stopping { remove: r, .. } => *r |= remove,
            Phase::Running(_) => {
                let Phase::Running(run) =
                    std::mem::replace(&mut w.phase, Phase::Backoff { at: now() })
                else {
                    unreachable!()
                };
                let pid = run.pid();
                let kill_at = if w.grace.is_zero() {
                    let _ = run.child.kill();
                    None
                } else {
                    let _ = run.child.process().signal(Signal::TERM);
                    now().checked_add(w.grace)
                };
                w.phase = Phase::Stopping {
                    run,
                    kill_at,
                    remove,
                };
                if let Some(at) = kill_at {
                    self.timers.insert((at, key));
                }
                let w = &self.workers[&key];
                self.set_state(w, WorkerState::Stopping { pid });
            }
            Phase::Backoff { at } => {
                self.timers.remove(&(*at, key));
                let mut w = self.workers.remove(&key).expect("present");
                self.set_state(&w, w.last);
                let cancelled = Error::new(
                    ErrorKind::ProcessDone,
                    format!("agent: worker {:?} was stopped before its restart", w.id),
                );
                self.report(&mut w, Err(cancelled), None, None);
                self.retire(w, remove);
            }
        }
    }

    fn stop(&mut self, key: u64, id: &str, remove: bool, done: Option<mpsc::Sender<()>>) {
        match self.workers.get_mut(&key) {
            Some(w) => {
                w.waiters.extend(done);
                self.begin_stop(key, remove);
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
        if self.timers.is_empty() {
            return;
        }
        let now = now();
        while let Some(&(at, key)) = self.timers.first() {
            if at > now {
                break;
            }
            self.timers.pop_first();
            let Some(w) = self.workers.get_mut(&key) else {
                continue;
            };
            match &mut w.phase {
                // The grace period is over.
                Phase::Stopping { run, kill_at, .. } if *kill_at == Some(at) => {
                    let _ = run.child.kill();
                    *kill_at = None;
                }
                Phase::Backoff { at: when } if *when == at => self.restart(key),
                _ => {}
            }
        }
    }

    fn restart(&mut self, key: u64) {
        let Some(w) = self.workers.get_mut(&key) else {
            return;
        };
        w.total_restarts += 1;
        match w.spawn() {
            Ok(run) => {
                let pid = run.pid();
                w.phase = Phase::Running(run);
                let w = &self.workers[&key];
                self.set_state(w, WorkerState::Running { pid });
                // The queue carried over goes to the new process.
                self.watch_or_kill(key);
            }
            Err(e) => {
                let w = self.workers.remove(&key).expect("present");
                self.ended(w, Err(e), None, None);
            }
        }
    }
}

fn now() -> Instant {
    Instant::now()
}
