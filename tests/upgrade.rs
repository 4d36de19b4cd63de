//! Zero-downtime upgrades, end to end: the `hot_restart_server` example under a loopback
//! load across consecutive upgrades (by admin request and by SIGHUP), failed upgrades,
//! systemd socket activation and `sd_notify`, and malformed hand-overs.
//!
//! The example binary is built by `cargo test` (all targets) or
//! `cargo build --example hot_restart_server`; these tests find it next to their own
//! binary and say so when it is missing.
#![cfg(feature = "upgrade")]

mod common;

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use forkexec::raw::{WaitOptions, WaitStatus};
use forkexec::{Cmd, Signal, Stdio};

/// The example server, built next to this test binary (`target/<profile>/examples/`).
fn server_exe() -> PathBuf {
    let me = std::env::current_exe().expect("current_exe");
    let dir = me
        .parent()
        .and_then(Path::parent)
        .expect("target/<profile>/deps");
    let exe = dir.join("examples").join("hot_restart_server");
    assert!(
        exe.is_file(),
        "{} is missing: build it first with `cargo build --example hot_restart_server` \
         (a plain `cargo test` builds it too)",
        exe.display()
    );
    exe
}

fn free_port() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
}

/// Makes this process the reaper of its orphaned descendants: each server generation is
/// reparented here when the previous one exits, so the test reaps them all.
fn become_subreaper() {
    // SAFETY: prctl(PR_SET_CHILD_SUBREAPER) takes plain integers.
    let r = unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
    assert_eq!(r, 0, "PR_SET_CHILD_SUBREAPER");
}

/// `GET path` on a new connection: (status, body).
fn get(addr: SocketAddr, path: &str) -> std::io::Result<(u16, String)> {
    let mut c = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
    c.set_read_timeout(Some(Duration::from_secs(30)))?;
    c.set_write_timeout(Some(Duration::from_secs(5)))?;
    c.write_all(format!("GET {path} HTTP/1.1\r\nHost: test\r\n\r\n").as_bytes())?;
    read_response(c)
}

fn read_response(mut c: TcpStream) -> std::io::Result<(u16, String)> {
    let mut out = String::new();
    c.read_to_string(&mut out)?;
    let status = out
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("no status line in {out:?}")))?;
    let body = out.split_once("\r\n\r\n").map(|x| x.1).unwrap_or("");
    Ok((status, body.to_string()))
}

/// What `/admin/info` says.
#[derive(Debug, Clone)]
struct Info {
    gen_: u64,
    pid: i32,
    started_by: String,
    handover_env: String,
    /// fd number -> target (`socket:[123]`, `pipe:[45]`, a path, ...).
    fds: BTreeMap<i32, String>,
}

impl Info {
    fn parse(body: &str) -> Info {
        let mut kv = BTreeMap::new();
        let mut fds = BTreeMap::new();
        for line in body.lines() {
            if let Some(rest) = line.strip_prefix("fd ") {
                let (n, t) = rest.split_once(' ').expect("fd line");
                fds.insert(n.parse().expect("fd number"), t.to_string());
            } else if let Some((k, v)) = line.split_once('=') {
                kv.insert(k.to_string(), v.to_string());
            }
        }
        Info {
            gen_: kv["gen"].parse().expect("gen"),
            pid: kv["pid"].parse().expect("pid"),
            started_by: kv["started_by"].clone(),
            handover_env: kv["handover_env"].clone(),
            fds,
        }
    }

    /// The listening socket: the one socket inode open twice (the server's listener and
    /// the upgrader's registered duplicate).
    fn listener_inode(&self) -> String {
        let mut count: BTreeMap<&str, usize> = BTreeMap::new();
        for t in self.fds.values().filter(|t| t.starts_with("socket:")) {
            *count.entry(t.as_str()).or_default() += 1;
        }
        let twice: Vec<_> = count.iter().filter(|(_, n)| **n == 2).collect();
        assert_eq!(twice.len(), 1, "one listening socket, held twice: {self:?}");
        twice[0].0.to_string()
    }

    /// The fds other than connections, by kind: what must not change between generations.
    fn stable_kinds(&self) -> Vec<String> {
        let l = self.listener_inode();
        let mut v: Vec<String> = self
            .fds
            .iter()
            .filter(|(_, t)| !t.starts_with("socket:") || **t == l)
            .map(|(n, t)| match t.split_once(":[") {
                Some((k, _)) if *t != l => k.to_string(),
                Some(_) => "listener".to_string(),
                None if *n <= 2 => format!("{n}:{t}"),
                None => t.clone(),
            })
            .collect();
        v.sort();
        v
    }
}

fn info(addr: SocketAddr) -> Info {
    let (status, body) = get(addr, "/admin/info").expect("GET /admin/info");
    assert_eq!(status, 200, "{body}");
    Info::parse(&body)
}

/// Polls `/admin/info` until the server answering is not `old_pid` (the previous
/// generation stops accepting as soon as the upgrade succeeds).
fn info_after(addr: SocketAddr, old_pid: i32) -> Info {
    let t0 = Instant::now();
    loop {
        let i = info(addr);
        if i.pid != old_pid {
            return i;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(20),
            "pid {old_pid} still answers"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// The children of `pid` (all its threads).
fn children_of(pid: i32) -> Vec<i32> {
    let mut out = Vec::new();
    if let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) {
        for t in tasks.flatten() {
            if let Ok(s) = std::fs::read_to_string(t.path().join("children")) {
                out.extend(s.split_whitespace().filter_map(|x| x.parse::<i32>().ok()));
            }
        }
    }
    out
}

/// Kills, when the test fails, the server generations it knows of and their descendants
/// (a passing test has ended them all), so that a failure leaves no server running.
struct KillOnPanic(Vec<i32>);

impl Drop for KillOnPanic {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            return;
        }
        let mut all = self.0.clone();
        let mut i = 0;
        while i < all.len() {
            let kids = children_of(all[i]);
            all.extend(
                kids.into_iter()
                    .filter(|k| !all.contains(k))
                    .collect::<Vec<_>>(),
            );
            i += 1;
        }
        for p in all {
            let _ = forkexec::find_process(p).and_then(|p| p.kill());
        }
    }
}

/// Reaps every descendant that ends up our child until all of `pids` are reaped; returns
/// their statuses.
fn reap_all(pids: &[i32], within: Duration) -> BTreeMap<i32, WaitStatus> {
    let deadline = Instant::now() + within;
    let mut got = BTreeMap::new();
    while pids.iter().any(|p| !got.contains_key(p)) {
        match forkexec::raw::waitpid(-1, WaitOptions::NOHANG) {
            Ok(Some((pid, st))) => {
                got.insert(pid, st);
            }
            _ => {
                assert!(
                    Instant::now() < deadline,
                    "generations not reaped in {within:?}: want {pids:?}, got {got:?}"
                );
                std::thread::sleep(Duration::from_millis(10));
            }
        }
    }
    got
}

/// Counters of the loopback load.
#[derive(Default)]
struct Load {
    tried: AtomicU64,
    answered: AtomicU64,
    failed: AtomicU64,
    errors: Mutex<Vec<String>>,
}

impl Load {
    fn record(&self, what: &str, r: std::io::Result<(u16, String)>) {
        self.tried.fetch_add(1, Ordering::Relaxed);
        match r {
            Ok((200, b)) if b.starts_with("gen=") => {
                self.answered.fetch_add(1, Ordering::Relaxed);
            }
            r => {
                self.failed.fetch_add(1, Ordering::Relaxed);
                let mut e = self.errors.lock().unwrap();
                if e.len() < 20 {
                    e.push(format!("{what}: {r:?}"));
                }
            }
        }
    }
}

/// Starts the load: short connections, slow requests and trickled requests, bounded in
/// count, until `stop`.
fn start_load(
    addr: SocketAddr,
    load: &Arc<Load>,
    stop: &Arc<AtomicBool>,
) -> Vec<std::thread::JoinHandle<()>> {
    let mut threads = Vec::new();
    for kind in [
        "short", "short", "short", "short", "slow", "slow", "trickle",
    ] {
        let (load, stop) = (load.clone(), stop.clone());
        threads.push(std::thread::spawn(move || {
            let mut n = 0;
            while !stop.load(Ordering::Relaxed) && n < 4000 {
                n += 1;
                match kind {
                    "short" => {
                        load.record(kind, get(addr, "/"));
                        std::thread::sleep(Duration::from_millis(2));
                    }
                    "slow" => load.record(kind, get(addr, "/slow?ms=300")),
                    _ => {
                        // The request arrives in two parts, 150 ms apart: in flight across
                        // an upgrade, on the connection the old generation accepted.
                        let r = (|| {
                            let mut c = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
                            c.set_read_timeout(Some(Duration::from_secs(30)))?;
                            c.write_all(b"GET / HTTP/1.1\r\n")?;
                            std::thread::sleep(Duration::from_millis(150));
                            c.write_all(b"Host: test\r\n\r\n")?;
                            read_response(c)
                        })();
                        load.record(kind, r);
                    }
                }
            }
        }));
    }
    threads
}

#[test]
fn upgrades_under_load_drop_nothing() {
    let _g = common::start("upgrades_under_load_drop_nothing", 180);
    become_subreaper();
    let exe = server_exe();
    let dir = common::TempDir::new("upgrades_under_load_drop_nothing");
    let log_path = dir.join("server.log");
    let log = File::create(&log_path).expect("log");
    let addr = free_port();
    let pid_file = dir.join("server.pid");
    let mut server = Cmd::new(&exe)
        .args(["--addr", &addr.to_string(), "--drain-ms", "15000"])
        .arg("--pid-file")
        .arg(&pid_file)
        .stdout(Stdio::from(log.try_clone().expect("dup log")))
        .stderr(Stdio::from(log))
        .start()
        .expect("start the server");
    let mut killer = KillOnPanic(vec![server.pid()]);
    let dump = || std::fs::read_to_string(&log_path).unwrap_or_default();

    let t0 = Instant::now();
    while get(addr, "/").is_err() {
        assert!(
            t0.elapsed() < Duration::from_secs(20),
            "the server did not start:\n{}",
            dump()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let first = info(addr);
    assert_eq!((first.gen_, first.pid), (1, server.pid()));
    assert_eq!(first.started_by, "Fresh");
    let listener = first.listener_inode();
    let kinds = first.stable_kinds();

    let load = Arc::new(Load::default());
    let stop = Arc::new(AtomicBool::new(false));
    let threads = start_load(addr, &load, &stop);
    std::thread::sleep(Duration::from_millis(300));

    let mut gens = vec![first.clone()];
    let check = |i: &Info, prev: &Info, gens: &[Info]| {
        assert_eq!(i.gen_, prev.gen_ + 1, "generation numbers:\n{}", dump());
        assert!(
            gens.iter().all(|g| g.pid != i.pid),
            "pid {} seen before",
            i.pid
        );
        assert_eq!(i.started_by, "Upgrade");
        assert_eq!(i.handover_env, "none", "stale hand-over variables");
        assert_eq!(i.listener_inode(), listener, "the same socket, handed over");
        assert_eq!(
            i.stable_kinds(),
            kinds,
            "fds of generation {}: {i:?}",
            i.gen_
        );
        let pid_in_file = std::fs::read_to_string(&pid_file).expect("PID file");
        assert_eq!(pid_in_file.trim(), i.pid.to_string(), "PID file");
    };
    let mut latencies = Vec::new();
    for round in 0..6 {
        let prev = gens.last().unwrap().clone();
        let next = if round == 2 {
            // By signal, as an operator would (`kill -HUP $(cat server.pid)`).
            forkexec::find_process(prev.pid)
                .and_then(|p| p.signal(Signal::HUP))
                .expect("SIGHUP");
            info_after(addr, prev.pid)
        } else {
            let (status, body) = get(addr, "/admin/upgrade").expect("GET /admin/upgrade");
            assert_eq!(status, 200, "upgrade {round}: {body}\n{}", dump());
            let new_pid: i32 = body
                .split_whitespace()
                .find_map(|w| w.strip_prefix("pid="))
                .and_then(|p| p.parse().ok())
                .expect("pid=");
            let us: u64 = body
                .split_whitespace()
                .find_map(|w| w.strip_prefix("ready_us="))
                .and_then(|p| p.parse().ok())
                .expect("ready_us=");
            latencies.push(Duration::from_micros(us));
            killer.0.push(new_pid);
            let i = info_after(addr, prev.pid);
            assert_eq!(i.pid, new_pid);
            i
        };
        if !killer.0.contains(&next.pid) {
            killer.0.push(next.pid);
        }
        check(&next, &prev, &gens);
        gens.push(next);

        if round == 3 {
            // A new binary that fails before ready(): exits, then hangs past the timeout.
            let cur = gens.last().unwrap().clone();
            let (status, body) = get(addr, "/admin/upgrade?fail=exit").expect("GET");
            assert_eq!(status, 500, "{body}");
            assert!(
                body.contains("exited before it was ready: exit status 3"),
                "{body}"
            );
            let (status, body) =
                get(addr, "/admin/upgrade?fail=hang&timeout_ms=1000").expect("GET");
            assert_eq!(status, 500, "{body}");
            assert!(body.contains("was not ready within"), "{body}");
            assert!(body.contains("killed"), "{body}");
            // Still the same server, with nothing left behind: the failed children are
            // reaped, no fd leaked.
            let after = info(addr);
            assert_eq!(after.pid, cur.pid, "the old server keeps serving");
            assert_eq!(after.gen_, cur.gen_);
            // The crate opens /dev/null (close-on-exec) once per process at its first
            // spawn and keeps it: not a leak, and never seen by a new generation.
            let mut after_kinds = after.stable_kinds();
            after_kinds.retain(|k| k != "/dev/null");
            assert_eq!(after_kinds, kinds, "no fd leak after failed upgrades");
            assert_eq!(
                children_of(cur.pid),
                Vec::<i32>::new(),
                "failed child reaped"
            );
        }
        std::thread::sleep(Duration::from_millis(200));
    }

    std::thread::sleep(Duration::from_millis(300));
    stop.store(true, Ordering::Relaxed);
    for t in threads {
        t.join().expect("load thread");
    }
    let (tried, answered, failed) = (
        load.tried.load(Ordering::Relaxed),
        load.answered.load(Ordering::Relaxed),
        load.failed.load(Ordering::Relaxed),
    );
    eprintln!(
        "upgrades: {} (+2 failed); connections tried {tried}, answered {answered}, failed \
         {failed}; upgrade latency (call to ready) {:?}",
        gens.len() - 1,
        latencies
    );
    assert_eq!(
        failed,
        0,
        "failed requests: {:?}\n{}",
        load.errors.lock().unwrap(),
        dump()
    );
    assert_eq!(tried, answered);
    assert!(tried >= 200, "too little load to mean anything: {tried}");

    // The newest generation exits on request; every generation is reaped here.
    let last = gens.last().unwrap().pid;
    let (status, _) = get(addr, "/admin/quit").expect("quit");
    assert_eq!(status, 200);
    let st = server.wait().expect("wait for generation 1");
    assert!(st.success(), "generation 1: {st}\n{}", dump());
    let rest: Vec<i32> = gens[1..].iter().map(|g| g.pid).collect();
    let statuses = reap_all(&rest, Duration::from_secs(60));
    for (pid, st) in &statuses {
        if rest.contains(pid) {
            assert_eq!(*st, WaitStatus::Exited(0), "pid {pid}\n{}", dump());
        }
    }
    assert!(
        rustix::process::test_kill_process(rustix::process::Pid::from_raw(last).unwrap()).is_err()
    );
    assert!(TcpStream::connect(addr).is_err(), "nobody listens any more");
}

#[test]
fn socket_activation_and_sd_notify() {
    let _g = common::start("socket_activation_and_sd_notify", 120);
    become_subreaper();
    let exe = server_exe();
    let dir = common::TempDir::new("socket_activation_and_sd_notify");
    // systemd's side: a listening socket as fd 3 and a notification socket.
    let sock = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = sock.local_addr().unwrap();
    let inode = rustix::fs::fstat(&sock).unwrap().st_ino;
    let notify = UnixDatagram::bind(dir.join("notify")).expect("notify socket");
    notify
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    // A second fd the server does not claim: closed by its ready(), never handed on.
    let stale = std::net::UdpSocket::bind("127.0.0.1:0").expect("udp");
    let stale_inode = format!("socket:[{}]", rustix::fs::fstat(&stale).unwrap().st_ino);
    let mut server = Cmd::new(&exe)
        .args(["--addr", &addr.to_string()])
        .env("LISTEN_FDS", "2")
        .env("LISTEN_FDNAMES", "http:stale")
        .env_child_pid("LISTEN_PID")
        .env("NOTIFY_SOCKET", dir.join("notify"))
        .extra_file(sock.as_fd().try_clone_to_owned().unwrap())
        .extra_file(OwnedFd::from(stale))
        .stderr(Stdio::inherit())
        .start()
        .expect("start");
    let mut killer = KillOnPanic(vec![server.pid()]);
    let recv = || {
        let mut b = [0u8; 256];
        let n = notify.recv(&mut b).expect("sd_notify message");
        String::from_utf8_lossy(&b[..n]).into_owned()
    };
    assert_eq!(recv(), format!("READY=1\nMAINPID={}", server.pid()));
    let i = info(addr);
    assert_eq!(i.started_by, "SocketActivation");
    assert_eq!(i.handover_env, "none");
    assert_eq!(i.listener_inode(), format!("socket:[{inode}]"), "adopted");
    assert!(
        i.fds.values().all(|t| *t != stale_inode),
        "the unclaimed fd is closed at ready(): {i:?}"
    );
    drop(sock); // only the server holds it now

    // An upgrade hands the socket on, and tells systemd the new main pid.
    let (status, body) = get(addr, "/admin/upgrade").expect("upgrade");
    assert_eq!(status, 200, "{body}");
    let j = info_after(addr, i.pid);
    killer.0.push(j.pid);
    assert_eq!(recv(), format!("MAINPID={}\nREADY=1", j.pid));
    assert_eq!((j.gen_, j.started_by.as_str()), (2, "Upgrade"));
    assert_eq!(j.listener_inode(), format!("socket:[{inode}]"));
    assert!(j.fds.values().all(|t| *t != stale_inode), "{j:?}");

    get(addr, "/admin/quit").expect("quit");
    assert!(server.wait().expect("wait").success());
    let st = reap_all(&[j.pid], Duration::from_secs(30));
    assert_eq!(st[&j.pid], WaitStatus::Exited(0));
}

#[test]
fn malformed_hand_over_is_a_clear_error() {
    let _g = common::start("malformed_hand_over_is_a_clear_error", 60);
    let exe = server_exe();
    let addr = free_port().to_string();
    let run = |cmd: &mut Cmd| -> String {
        let err = cmd
            .output()
            .expect_err("the server must refuse the hand-over");
        String::from_utf8_lossy(err.stderr()).into_owned()
    };
    // Duplicate names.
    let (r, _w) = forkexec::raw::pipe().unwrap();
    let (r2, _w2) = forkexec::raw::pipe().unwrap();
    let msg = run(Cmd::new(&exe)
        .args(["--addr", &addr])
        .env("LISTEN_FDS", "2")
        .env("LISTEN_FDNAMES", "http:http")
        .env_child_pid("LISTEN_PID")
        .extra_file(r)
        .extra_file(r2));
    assert!(msg.contains("duplicate fd name \"http\""), "{msg}");
    // A count that is not a number.
    let msg = run(Cmd::new(&exe)
        .args(["--addr", &addr])
        .env("LISTEN_FDS", "99999999999999999999")
        .env_child_pid("LISTEN_PID"));
    assert!(
        msg.contains("LISTEN_FDS=") && msg.contains("out of range"),
        "{msg}"
    );
    // A count that names fds that were not passed: the server's own fds (its signalfd
    // and so on, opened before the hand-over is read) are not taken for inherited ones.
    let msg = run(Cmd::new(&exe)
        .args(["--addr", &addr])
        .env("LISTEN_FDS", "3")
        .env_child_pid("LISTEN_PID"));
    assert!(
        msg.contains("fd 3") && msg.contains("was not inherited"),
        "{msg}"
    );
    // An fd named like the listener that is not a socket.
    let (r, _w) = forkexec::raw::pipe().unwrap();
    let msg = run(Cmd::new(&exe)
        .args(["--addr", &addr])
        .env("LISTEN_FDS", "1")
        .env("LISTEN_FDNAMES", "http")
        .env_child_pid("LISTEN_PID")
        .extra_file(r));
    assert!(
        msg.contains("inherited fd 3 named \"http\" is not a socket"),
        "{msg}"
    );
    // A readiness fd that is not a pipe: refused, and nothing taken.
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    let u = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind udp");
    let msg = run(Cmd::new(&exe)
        .args(["--addr", &addr])
        .env("LISTEN_FDS", "1")
        .env("LISTEN_FDNAMES", "http")
        .env("FORKEXEC_UPGRADE_READY_FD", "4")
        .env_child_pid("LISTEN_PID")
        .extra_file(OwnedFd::from(l))
        .extra_file(OwnedFd::from(u)));
    assert!(
        msg.contains("FORKEXEC_UPGRADE_READY_FD=4 is not a pipe"),
        "{msg}"
    );
    // Meant for another process: ignored, the server starts afresh.
    let mut ok = Cmd::new(&exe);
    ok.args(["--addr", &addr])
        .env("LISTEN_FDS", "1")
        .env("LISTEN_PID", "1")
        .stdout(Stdio::piped());
    let mut child = ok.start().expect("start");
    let _killer = KillOnPanic(vec![child.pid()]);
    let mut line = String::new();
    let mut out = child.stdout.take().unwrap();
    let mut b = [0u8; 1];
    while !line.ends_with('\n') && out.read(&mut b).unwrap_or(0) == 1 {
        line.push(b[0] as char);
    }
    assert!(line.contains("started by Fresh"), "{line}");
    let sa: SocketAddr = addr.parse().unwrap();
    assert_eq!(info(sa).handover_env, "none", "stale variables removed");
    get(sa, "/admin/quit").expect("quit");
    let mut rest = String::new();
    out.read_to_string(&mut rest).expect("the server's output");
    assert!(rest.contains("exiting"), "{rest}");
    assert!(child.wait().expect("wait").success());
}

/// Set in the copy of this test binary that [`adoption_happens_once_per_process`] runs.
const ADOPT_CHILD: &str = "FORKEXEC_TEST_ADOPT_ONCE";

/// The inherited fds have one owner per process: a second upgrader that would inherit is
/// refused, during and after the life of the first, and an fd the program opened since
/// at an inherited number is never taken. Process-wide state: the checks run in a fresh
/// copy of this test binary, handed a listening socket as systemd would.
#[test]
fn adoption_happens_once_per_process() {
    if std::env::var_os(ADOPT_CHILD).is_some() {
        adoption_child();
        return;
    }
    let _g = common::start("adoption_happens_once_per_process", 120);
    let sock = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = sock.local_addr().unwrap();
    let inode = rustix::fs::fstat(&sock).unwrap().st_ino;
    let out = Cmd::new(std::env::current_exe().expect("current_exe"))
        .args([
            "--exact",
            "adoption_happens_once_per_process",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(ADOPT_CHILD, format!("{addr} {inode}"))
        .env("LISTEN_FDS", "1")
        .env("LISTEN_FDNAMES", "http")
        .env_child_pid("LISTEN_PID")
        .extra_file(OwnedFd::from(sock))
        .timeout(Duration::from_secs(100))
        .output();
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    let out = match out {
        Ok(o) => text(&o),
        Err(e) => panic!("the child test failed: {e}\nstderr:\n{}", text(e.stderr())),
    };
    assert!(
        out.contains("adoption child: all checks passed"),
        "the checks did not run:\n{out}"
    );
}

/// The checks of [`adoption_happens_once_per_process`], in the process handed fd 3.
fn adoption_child() {
    use forkexec::ErrorKind;
    use forkexec::upgrade::{StartedBy, Upgrader};
    use std::os::fd::AsRawFd;
    let v = std::env::var(ADOPT_CHILD).unwrap();
    let (addr, inode) = v.split_once(' ').unwrap();
    let addr: SocketAddr = addr.parse().unwrap();
    let inode: u64 = inode.parse().unwrap();

    let up = Upgrader::new().expect("the first upgrader adopts");
    assert_eq!(up.started_by(), StartedBy::SocketActivation);
    assert_eq!(up.inherited(), ["http"]);
    // A second one would take fd 3 again: refused, with the way out in the message.
    let e = Upgrader::new().expect_err("a second upgrader must not adopt");
    assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e}");
    assert!(e.to_string().contains("inherit(false)"), "{e}");
    let other = Upgrader::builder()
        .inherit(false)
        .build()
        .expect("inherit(false)");
    assert_eq!(other.started_by(), StartedBy::Fresh);
    assert!(other.inherited().is_empty());
    // The first still owns the socket, untouched.
    assert_eq!(up.inherited(), ["http"]);
    let l = up
        .listen_tcp("http", addr)
        .expect("claim the inherited socket");
    assert_eq!(
        rustix::fs::fstat(&l).unwrap().st_ino,
        inode,
        "the inherited one"
    );
    drop((l, up, other));

    // The fd numbers are free again and the program reuses them, not close-on-exec (as
    // a C library might): still never adopted, the flag outlives the first upgrader.
    let mine = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    rustix::io::fcntl_setfd(&mine, rustix::io::FdFlags::empty()).unwrap();
    let e = Upgrader::new().expect_err("no upgrader adopts twice");
    assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e}");
    assert!(
        mine.local_addr().is_ok(),
        "fd {} still ours",
        mine.as_raw_fd()
    );
    println!("adoption child: all checks passed");
}

/// Set in the copy of this test binary that [`handover_env_kept_when_threads_run`] runs.
const THREADED_CHILD: &str = "FORKEXEC_TEST_ADOPT_THREADED";

/// `Upgrader::new` removes the hand-over variables from the environment only while the
/// process is single-threaded (removing them is unsound while another thread may read the
/// environment); with a second thread running it leaves them, and still adopts. The other
/// case (removed) is pinned by the server tests (`handover_env` is `none`). Process-wide
/// state: the checks run in a fresh copy of this test binary, handed a listening socket.
#[test]
fn handover_env_kept_when_threads_run() {
    if std::env::var_os(THREADED_CHILD).is_some() {
        threaded_child();
        return;
    }
    let _g = common::start("handover_env_kept_when_threads_run", 120);
    let sock = TcpListener::bind("127.0.0.1:0").expect("bind");
    let out = Cmd::new(std::env::current_exe().expect("current_exe"))
        .args([
            "--exact",
            "handover_env_kept_when_threads_run",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(THREADED_CHILD, "1")
        .env("LISTEN_FDS", "1")
        .env("LISTEN_FDNAMES", "http")
        .env_child_pid("LISTEN_PID")
        .extra_file(OwnedFd::from(sock))
        .timeout(Duration::from_secs(100))
        .output();
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    let out = match out {
        Ok(o) => text(&o),
        Err(e) => panic!("the child test failed: {e}\nstderr:\n{}", text(e.stderr())),
    };
    assert!(
        out.contains("threaded child: all checks passed"),
        "the checks did not run:\n{out}"
    );
}

/// The checks of [`handover_env_kept_when_threads_run`], in the process handed fd 3.
fn threaded_child() {
    use forkexec::upgrade::{StartedBy, Upgrader};
    let (stop_tx, stop_rx) = std::sync::mpsc::channel::<()>();
    let t = std::thread::spawn(move || {
        let _ = stop_rx.recv();
    });
    let up = Upgrader::new().expect("adopts with threads running");
    assert_eq!(up.started_by(), StartedBy::SocketActivation);
    assert_eq!(up.inherited(), ["http"]);
    for k in ["LISTEN_FDS", "LISTEN_FDNAMES", "LISTEN_PID"] {
        assert!(std::env::var_os(k).is_some(), "{k} was removed");
    }
    // They are never passed on stale: an upgrade sets them afresh for its child.
    up.ready().expect("ready");
    let mut opts = forkexec::upgrade::UpgradeOptions::new();
    opts.program("/bin/sh")
        .args(["-c", "exit $LISTEN_FDS"])
        .timeout(Duration::from_secs(30));
    let e = up.upgrade_with(&opts).expect_err("exits before ready");
    assert_eq!(e.state().expect("state").exit_code(), 0, "{e}");
    stop_tx.send(()).unwrap();
    t.join().unwrap();
    println!("threaded child: all checks passed");
}
