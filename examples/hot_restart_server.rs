//! A small HTTP/1.1 server that replaces its own binary without dropping a connection,
//! built on `forkexec::upgrade`.
//!
//! ```text
//! hot_restart_server [--addr 127.0.0.1:8080] [--pid-file PATH] [--timeout-ms N] [--drain-ms N]
//! hot_restart_server --bench [--upgrades N] [--clients N]
//! ```
//!
//! - `GET /` answers `gen=G pid=P`; `GET /slow?ms=N` does so after N ms (at most 10 s).
//! - `GET /admin/upgrade[?fail=exit|hang][&timeout_ms=N]` upgrades and answers
//!   `ok pid=NEW ready_us=MICROS`, or `error: ...` with status 500 (the old server then
//!   goes on serving). `fail=exit` makes the new generation exit before `ready()`,
//!   `fail=hang` makes it hang there (until the timeout kills it).
//! - `GET /admin/info` answers the generation, pid, how it was started, whether any
//!   hand-over variable is still visible, and its open fds.
//! - `GET /admin/quit` stops the server (as `SIGTERM`).
//! - `SIGHUP` or `SIGUSR2` upgrades; `SIGTERM` or `SIGINT` stops. A stopping generation
//!   stops accepting, finishes the connections in flight (at most `--drain-ms`), and exits.
//! - `HOT_RESTART_FAIL=exit|hang` in the environment makes a generation fail before
//!   `ready()` (what `fail=` sets for the new generation only).
//!
//! `--bench` starts a server on a free loopback port, keeps clients connecting while it
//! upgrades it `--upgrades` times (default 20), and prints connections tried and failed and
//! the upgrade latency (call to `ready()`).

#[cfg(not(feature = "upgrade"))]
fn main() {
    eprintln!("hot_restart_server needs the `upgrade` feature of forkexec");
}

#[cfg(feature = "upgrade")]
fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let r = if args.iter().any(|a| a == "--bench") {
        app::bench(&args)
    } else {
        app::serve(&args)
    };
    if let Err(e) = r {
        eprintln!("hot_restart_server (pid {}): {e}", std::process::id());
        std::process::exit(1);
    }
}

#[cfg(feature = "upgrade")]
mod app {
    use std::error::Error;
    use std::io::{self, Read, Write};
    use std::net::{SocketAddr, TcpListener, TcpStream};
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
    use std::sync::{Arc, Condvar, Mutex};
    use std::thread::JoinHandle;
    use std::time::{Duration, Instant};

    use forkexec::upgrade::{Signals, UpgradeOptions, Upgrader};
    use forkexec::{Cmd, Signal, Stdio};
    use rustix::event::{PollFd, PollFlags, poll};

    type Res<T> = Result<T, Box<dyn Error>>;

    fn flag<'a>(args: &'a [String], name: &str) -> Option<&'a str> {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .map(String::as_str)
    }

    fn num(args: &[String], name: &str, default: u64) -> Res<u64> {
        match flag(args, name) {
            Some(v) => Ok(v
                .parse()
                .map_err(|_| format!("{name}: not a number: {v}"))?),
            None => Ok(default),
        }
    }

    /// What every connection thread shares.
    struct Server {
        up: Arc<Upgrader>,
        active: Mutex<usize>,
        idle: Condvar,
        upgrades: Mutex<Vec<JoinHandle<()>>>,
    }

    impl Server {
        fn who(&self) -> String {
            format!("gen {} pid {}", self.up.generation(), std::process::id())
        }

        /// Upgrades in a thread of its own, so that the accept loop goes on meanwhile.
        fn upgrade_in_background(self: &Arc<Self>, why: &'static str) {
            let s = self.clone();
            let t = std::thread::spawn(move || match s.up.upgrade() {
                Ok(u) => println!(
                    "{}: upgraded ({why}) to pid {} in {:?}",
                    s.who(),
                    u.pid,
                    u.ready_after
                ),
                Err(e) => eprintln!("{}: upgrade ({why}) failed: {e}", s.who()),
            });
            self.upgrades
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(t);
        }
    }

    pub fn serve(args: &[String]) -> Res<()> {
        // First of all, before any thread exists: the signals go to the fd, not to their
        // default action, in every thread this process will have.
        let signals = Signals::new(&[Signal::HUP, Signal::USR2, Signal::TERM, Signal::INT])?;
        let addr = flag(args, "--addr").unwrap_or("127.0.0.1:8080");
        let mut b = Upgrader::builder();
        b.upgrade_timeout(Duration::from_millis(num(args, "--timeout-ms", 10_000)?));
        if let Some(p) = flag(args, "--pid-file") {
            b.pid_file(p);
        }
        let up = Arc::new(b.build()?);
        let drain = Duration::from_millis(num(args, "--drain-ms", 10_000)?);
        let listener = up.listen_tcp("http", addr)?;
        // Shared with the other generation during an upgrade: never block in accept.
        listener.set_nonblocking(true)?;

        match std::env::var("HOT_RESTART_FAIL").as_deref() {
            Ok("exit") => {
                eprintln!(
                    "gen {} pid {}: failing before ready() (HOT_RESTART_FAIL=exit)",
                    up.generation(),
                    std::process::id()
                );
                std::process::exit(3);
            }
            Ok("hang") => {
                eprintln!(
                    "gen {} pid {}: hanging before ready() (HOT_RESTART_FAIL=hang)",
                    up.generation(),
                    std::process::id()
                );
                loop {
                    std::thread::sleep(Duration::from_secs(3600));
                }
            }
            _ => {}
        }

        up.ready()?;
        let srv = Arc::new(Server {
            up: up.clone(),
            active: Mutex::new(0),
            idle: Condvar::new(),
            upgrades: Mutex::new(Vec::new()),
        });
        println!(
            "{}: serving http://{} (started by {:?})",
            srv.who(),
            listener.local_addr()?,
            up.started_by()
        );

        while !up.exit_requested() {
            let mut fds = [
                PollFd::new(&listener, PollFlags::IN),
                PollFd::new(&signals, PollFlags::IN),
                PollFd::from_borrowed_fd(up.exit_fd(), PollFlags::IN),
            ];
            match poll(&mut fds, None) {
                Ok(_) | Err(rustix::io::Errno::INTR) => {}
                Err(e) => return Err(e.into()),
            }
            while let Some(sig) = signals.try_next()? {
                match sig {
                    Signal::HUP => srv.upgrade_in_background("SIGHUP"),
                    Signal::USR2 => srv.upgrade_in_background("SIGUSR2"),
                    _ => up.stop(),
                }
            }
            loop {
                match listener.accept() {
                    Ok((conn, _)) => {
                        *srv.active.lock().unwrap_or_else(|p| p.into_inner()) += 1;
                        let s = srv.clone();
                        std::thread::spawn(move || {
                            if let Err(e) = handle(&s, conn) {
                                eprintln!("{}: connection: {e}", s.who());
                            }
                            let mut n = s.active.lock().unwrap_or_else(|p| p.into_inner());
                            *n -= 1;
                            if *n == 0 {
                                s.idle.notify_all();
                            }
                        });
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    // EMFILE and the like: retry at the next wake-up.
                    Err(e) => {
                        eprintln!("{}: accept: {e}", srv.who());
                        std::thread::sleep(Duration::from_millis(10));
                        break;
                    }
                }
            }
        }

        // Stop accepting: the next generation (if any) holds the same socket and takes
        // every connection from now on. Then drain.
        drop(listener);
        let deadline = Instant::now() + drain;
        let mut n = srv.active.lock().unwrap_or_else(|p| p.into_inner());
        println!("{}: stopping; draining {} connection(s)", srv.who(), *n);
        while *n > 0 {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                println!("{}: drain timeout; {} connection(s) cut", srv.who(), *n);
                break;
            }
            n = srv
                .idle
                .wait_timeout(n, left)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
        drop(n);
        let pending: Vec<_> =
            std::mem::take(&mut *srv.upgrades.lock().unwrap_or_else(|p| p.into_inner()));
        for t in pending {
            let _ = t.join();
        }
        println!("{}: exiting", srv.who());
        Ok(())
    }

    fn respond(conn: &mut TcpStream, status: &str, srv: &Server, body: &str) -> io::Result<()> {
        let head = format!(
            "HTTP/1.1 {status}\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\
             Connection: close\r\nX-Generation: {}\r\nX-Pid: {}\r\n\r\n",
            body.len(),
            srv.up.generation(),
            std::process::id()
        );
        conn.write_all(head.as_bytes())?;
        conn.write_all(body.as_bytes())?;
        conn.flush()
    }

    fn query<'a>(target: &'a str, key: &str) -> Option<&'a str> {
        let q = target.split_once('?')?.1;
        q.split('&')
            .filter_map(|kv| kv.split_once('='))
            .find(|(k, _)| *k == key)
            .map(|(_, v)| v)
    }

    fn handle(srv: &Arc<Server>, mut conn: TcpStream) -> io::Result<()> {
        conn.set_read_timeout(Some(Duration::from_secs(10)))?;
        conn.set_write_timeout(Some(Duration::from_secs(10)))?;
        let mut req = Vec::new();
        let mut buf = [0u8; 1024];
        while !req.windows(4).any(|w| w == b"\r\n\r\n") {
            // EINTR: a signal meant for another thread (a child's SIGCHLD, say) can
            // interrupt a read that has a timeout; it is not an error.
            let n = match conn.read(&mut buf) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                r => r?,
            };
            if n == 0 {
                return Ok(()); // the client went away before a whole request
            }
            req.extend_from_slice(&buf[..n]);
            if req.len() > 16 * 1024 {
                return respond(&mut conn, "431 Request Header Fields Too Large", srv, "");
            }
        }
        let line = String::from_utf8_lossy(&req);
        let mut parts = line.lines().next().unwrap_or("").split(' ');
        let (method, target) = (parts.next().unwrap_or(""), parts.next().unwrap_or("/"));
        if method != "GET" {
            return respond(&mut conn, "405 Method Not Allowed", srv, "GET only\n");
        }
        let path = target.split('?').next().unwrap_or("/");
        let hello = format!("gen={} pid={}\n", srv.up.generation(), std::process::id());
        match path {
            "/" => respond(&mut conn, "200 OK", srv, &hello),
            "/slow" => {
                let ms = query(target, "ms")
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(500);
                std::thread::sleep(Duration::from_millis(ms).min(Duration::from_secs(10)));
                respond(&mut conn, "200 OK", srv, &hello)
            }
            "/admin/info" => respond(&mut conn, "200 OK", srv, &info(srv)),
            "/admin/quit" => {
                srv.up.stop();
                respond(&mut conn, "200 OK", srv, "bye\n")
            }
            "/admin/upgrade" => {
                let mut opts = UpgradeOptions::new();
                if let Some(f) = query(target, "fail") {
                    opts.env("HOT_RESTART_FAIL", f);
                }
                if let Some(t) = query(target, "timeout_ms").and_then(|v| v.parse().ok()) {
                    opts.timeout(Duration::from_millis(t));
                }
                match srv.up.upgrade_with(&opts) {
                    Ok(u) => {
                        println!(
                            "{}: upgraded (admin) to pid {} in {:?}",
                            srv.who(),
                            u.pid,
                            u.ready_after
                        );
                        let body =
                            format!("ok pid={} ready_us={}\n", u.pid, u.ready_after.as_micros());
                        respond(&mut conn, "200 OK", srv, &body)
                    }
                    Err(e) => {
                        eprintln!("{}: upgrade (admin) failed: {e}", srv.who());
                        respond(
                            &mut conn,
                            "500 Internal Server Error",
                            srv,
                            &format!("error: {e}\n"),
                        )
                    }
                }
            }
            _ => respond(&mut conn, "404 Not Found", srv, "not found\n"),
        }
    }

    /// Generation, pid, start, hand-over variables still visible, open fds.
    fn info(srv: &Server) -> String {
        let vars = forkexec::upgrade::ENV_LISTEN_FDS;
        let visible: Vec<&str> = [
            vars,
            forkexec::upgrade::ENV_LISTEN_PID,
            forkexec::upgrade::ENV_LISTEN_FDNAMES,
            forkexec::upgrade::ENV_READY_FD,
            forkexec::upgrade::ENV_GENERATION,
        ]
        .into_iter()
        .filter(|k| std::env::var_os(k).is_some())
        .collect();
        let mut s = format!(
            "gen={}\npid={}\nstarted_by={:?}\nhandover_env={}\n",
            srv.up.generation(),
            std::process::id(),
            srv.up.started_by(),
            if visible.is_empty() {
                "none".to_string()
            } else {
                visible.join(",")
            }
        );
        let mut fds: Vec<(i32, String)> = Vec::new();
        if let Ok(dir) = std::fs::read_dir("/proc/self/fd") {
            for e in dir.flatten() {
                let Ok(n) = e.file_name().to_string_lossy().parse::<i32>() else {
                    continue;
                };
                let Ok(target) = std::fs::read_link(e.path()) else {
                    continue; // the directory's own fd, closed by now
                };
                let t = target.to_string_lossy().into_owned();
                if t.starts_with("/proc/") && t.ends_with("/fd") {
                    continue; // the directory being listed
                }
                fds.push((n, t));
            }
        }
        fds.sort();
        for (n, t) in fds {
            s.push_str(&format!("fd {n} {t}\n"));
        }
        s
    }

    // ---------------------------------------------------------------- the benchmark

    /// `GET path` on a new connection; (status, body).
    pub fn get(addr: SocketAddr, path: &str) -> io::Result<(u16, String)> {
        let mut c = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
        c.set_read_timeout(Some(Duration::from_secs(30)))?;
        c.set_write_timeout(Some(Duration::from_secs(5)))?;
        c.write_all(format!("GET {path} HTTP/1.1\r\nHost: bench\r\n\r\n").as_bytes())?;
        let mut out = String::new();
        c.read_to_string(&mut out)?;
        let status = out
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| io::Error::other(format!("no status line in {out:?}")))?;
        let body = out.split_once("\r\n\r\n").map(|x| x.1).unwrap_or("");
        Ok((status, body.to_string()))
    }

    fn field<'a>(body: &'a str, key: &str) -> Option<&'a str> {
        body.split_whitespace()
            .chain(body.lines())
            .find_map(|w| w.strip_prefix(key)?.strip_prefix('='))
    }

    pub fn bench(args: &[String]) -> Res<()> {
        let upgrades = num(args, "--upgrades", 20)? as usize;
        let clients = num(args, "--clients", 8)? as usize;
        // Every generation becomes our child when its parent exits, so we reap them all.
        // SAFETY: prctl(PR_SET_CHILD_SUBREAPER) takes plain integers.
        if unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) } != 0 {
            return Err(io::Error::last_os_error().into());
        }
        let addr = TcpListener::bind("127.0.0.1:0")?.local_addr()?;
        let me = std::env::current_exe()?;
        let mut server = Cmd::new(&me)
            .args(["--addr", &addr.to_string(), "--drain-ms", "10000"])
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .start()?;
        let t0 = Instant::now();
        while get(addr, "/").is_err() {
            if t0.elapsed() > Duration::from_secs(10) {
                server.kill()?;
                server.wait()?;
                return Err("the server did not start".into());
            }
            std::thread::sleep(Duration::from_millis(20));
        }

        let stop = Arc::new(AtomicBool::new(false));
        let tried = Arc::new(AtomicU64::new(0));
        let failed = Arc::new(AtomicU64::new(0));
        let mut threads = Vec::new();
        for i in 0..clients + 2 {
            let (stop, tried, failed) = (stop.clone(), tried.clone(), failed.clone());
            // Two clients hold slow requests across the upgrades; the others are short.
            let path = if i < 2 { "/slow?ms=300" } else { "/" };
            threads.push(std::thread::spawn(move || {
                let mut n = 0;
                while !stop.load(Ordering::Relaxed) && n < 20_000 {
                    n += 1;
                    tried.fetch_add(1, Ordering::Relaxed);
                    match get(addr, path) {
                        Ok((200, b)) if b.starts_with("gen=") => {}
                        r => {
                            failed.fetch_add(1, Ordering::Relaxed);
                            eprintln!("bench: {path}: {r:?}");
                        }
                    }
                    std::thread::sleep(Duration::from_millis(1));
                }
            }));
        }

        let mut latencies = Vec::new();
        for _ in 0..upgrades {
            std::thread::sleep(Duration::from_millis(100));
            let (status, body) = get(addr, "/admin/upgrade")?;
            if status != 200 {
                return Err(format!("upgrade failed: {body}").into());
            }
            let us: u64 = field(&body, "ready_us")
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
            latencies.push(Duration::from_micros(us));
        }
        std::thread::sleep(Duration::from_millis(200));
        stop.store(true, Ordering::Relaxed);
        for t in threads {
            let _ = t.join();
        }
        let (_, info) = get(addr, "/admin/info")?;
        let last: i32 = field(&info, "pid")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        get(addr, "/admin/quit")?;
        server.wait()?;
        // Reap every generation (each is our child once its parent has exited).
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            match forkexec::raw::waitpid(-1, forkexec::raw::WaitOptions::NOHANG) {
                Ok(Some(_)) => continue,
                _ if rustix::process::test_kill_process(
                    rustix::process::Pid::from_raw(last).ok_or("bad pid")?,
                )
                .is_err() =>
                {
                    break;
                }
                _ if Instant::now() > deadline => return Err("the server did not exit".into()),
                _ => std::thread::sleep(Duration::from_millis(10)),
            }
        }
        while let Ok(Some(_)) = forkexec::raw::waitpid(-1, forkexec::raw::WaitOptions::NOHANG) {}

        latencies.sort();
        let median = latencies
            .get(latencies.len() / 2)
            .copied()
            .unwrap_or_default();
        let max = latencies.last().copied().unwrap_or_default();
        println!(
            "| upgrades | connections tried | failed | upgrade latency (call → ready) median | max |"
        );
        println!("|---:|---:|---:|---:|---:|");
        println!(
            "| {} | {} | {} | {:.1} ms | {:.1} ms |",
            latencies.len(),
            tried.load(Ordering::Relaxed),
            failed.load(Ordering::Relaxed),
            median.as_secs_f64() * 1e3,
            max.as_secs_f64() * 1e3
        );
        if failed.load(Ordering::Relaxed) > 0 {
            return Err("some connections failed".into());
        }
        Ok(())
    }
}
