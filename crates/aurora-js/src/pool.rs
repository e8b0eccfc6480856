//! The host side: sandbox processes (re-executions of the host program that
//! the entry hook in `child.rs` turns into sandboxes), a pool of idle ones,
//! and [`Session`], the per-query handle that enforces the time limit from
//! outside the sandbox (a timed wait, then `SIGKILL`) and the query budget.

use crate::child::ENV;
use crate::protocol::{self, Fault, Request, WireLimits};
use crate::{Failure, Limits};
use aurora_core::Value;
use std::io::{self, Read};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::mpsc::{self, Sender};
use std::sync::{Condvar, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// How long past a request's time limit the host waits before it kills the
/// sandbox. The engine's interrupt handler stops a script after the limit
/// in CPU time; the host's wall-clock wait of limit + grace stops anything
/// (native code that never checks, a stalled or crashed sandbox).
pub const KILL_GRACE: Duration = Duration::from_millis(200);

/// How long a new sandbox may take to start and say hello.
const START_TIMEOUT: Duration = Duration::from_secs(20);

/// One sandbox process. Replies are read on the calling thread, with
/// `poll(2)` bounding every wait: no reader thread, no hand-off.
struct Worker {
    child: Child,
    stdin: ChildStdin,
    stdout: ChildStdout,
    /// Bytes read but not yet a whole frame.
    pending: Vec<u8>,
}

/// Why a call got no reply.
enum Lost {
    /// No reply in time; the process was killed.
    TimedOut,
    /// The process died (or broke the protocol); how.
    Died(String),
}

impl Worker {
    fn start() -> Result<Worker, Failure> {
        let mut child = spawn().map_err(|e| Failure::Unavailable(format!("cannot start a sandbox process: {e}")))?;
        let (Some(stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
            let _ = child.kill();
            let _ = child.wait();
            return Err(Failure::Unavailable("the sandbox process has no pipes".into()));
        };
        let mut worker = Worker { child, stdin, stdout, pending: Vec::new() };
        let not_started = || {
            Failure::Unavailable(
                "the sandbox process did not start (the program must be an executable that links aurora, on Linux)"
                    .into(),
            )
        };
        if sys::set_nonblocking(&worker.stdout).is_err() {
            return Err(not_started());
        }
        match worker.read_frame(Instant::now() + START_TIMEOUT) {
            Ok(frame) if protocol::decode::<&str>(&frame).is_ok_and(|h| h == protocol::HELLO) => Ok(worker),
            _ => Err(not_started()),
        }
    }

    /// Sends a request and waits at most `wait` (wall clock) for the reply;
    /// past that, kills the sandbox.
    fn call(&mut self, request: &Request, wait: Duration) -> Result<protocol::Reply, Lost> {
        let deadline = Instant::now() + wait;
        let bytes = protocol::encode(request).map_err(|e| Lost::Died(e.to_string()))?;
        if protocol::write_frame(&mut self.stdin, &bytes).is_err() {
            return Err(Lost::Died(self.end()));
        }
        match self.read_frame(deadline) {
            Ok(frame) => protocol::decode(&frame).map_err(|e| Lost::Died(format!("bad reply: {e}"))),
            Err(Lost::TimedOut) => {
                self.end();
                Err(Lost::TimedOut)
            }
            Err(Lost::Died(why)) => {
                let how = self.end();
                Err(Lost::Died(if why.is_empty() { how } else { format!("{how}: {why}") }))
            }
        }
    }

    /// Reads one frame, waiting until `deadline` at the latest.
    fn read_frame(&mut self, deadline: Instant) -> Result<Vec<u8>, Lost> {
        let mut chunk = [0u8; 16 << 10];
        loop {
            if self.pending.len() >= 4 {
                let len =
                    u32::from_le_bytes([self.pending[0], self.pending[1], self.pending[2], self.pending[3]]) as usize;
                if len > protocol::MAX_FRAME {
                    return Err(Lost::Died("reply frame too large".into()));
                }
                if self.pending.len() >= 4 + len {
                    let frame = self.pending[4..4 + len].to_vec();
                    self.pending.drain(..4 + len);
                    return Ok(frame);
                }
            }
            match self.stdout.read(&mut chunk) {
                Ok(0) => return Err(Lost::Died(String::new())),
                Ok(n) => {
                    self.pending.extend_from_slice(&chunk[..n]);
                    continue;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock || e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(Lost::Died(e.to_string())),
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(Lost::TimedOut);
            }
            sys::wait_readable(&self.stdout, left);
        }
    }

    /// Kills the process and says how it ended.
    fn end(&mut self) -> String {
        let _ = self.child.kill();
        match self.child.wait() {
            Ok(status) => describe_exit(status),
            Err(e) => e.to_string(),
        }
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn describe_exit(status: std::process::ExitStatus) -> String {
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt;
        if let Some(signal) = status.signal() {
            let name = match signal {
                4 => " (SIGILL)",
                6 => " (SIGABRT)",
                7 => " (SIGBUS)",
                9 => " (SIGKILL)",
                11 => " (SIGSEGV)",
                _ => "",
            };
            return format!("the sandbox process was killed by signal {signal}{name}");
        }
    }
    format!("the sandbox process exited ({status})")
}

/// Starts a sandbox: this same program, with `ENV` set, from one long-lived
/// thread (the child asks to be killed when the thread that started it
/// exits, so that thread must never exit).
fn spawn() -> io::Result<Child> {
    type Ask = Sender<io::Result<Child>>;
    static SPAWNER: OnceLock<Mutex<Option<Sender<Ask>>>> = OnceLock::new();
    let spawner = SPAWNER.get_or_init(|| {
        let (tx, rx) = mpsc::channel::<Ask>();
        let started = std::thread::Builder::new().name("aurora-js-spawner".into()).spawn(move || {
            for answer in rx {
                let _ = answer.send(command().and_then(|mut c| c.spawn()));
            }
        });
        Mutex::new(started.ok().map(|_| tx))
    });
    let (answer, child) = mpsc::channel();
    let sent = spawner.lock().unwrap_or_else(|e| e.into_inner()).as_ref().map(|s| s.send(answer));
    if !matches!(sent, Some(Ok(()))) {
        return Err(io::Error::other("the spawner thread is not running"));
    }
    child.recv().map_err(|_| io::Error::other("the spawner thread stopped"))?
}

fn command() -> io::Result<Command> {
    if !cfg!(any(target_os = "linux", target_os = "android")) {
        return Err(io::Error::other("sandbox processes need Linux"));
    }
    let mut c = Command::new("/proc/self/exe");
    c.env_clear()
        .env(ENV, std::process::id().to_string())
        .current_dir("/")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    if let Some(path) = std::env::var_os("LD_LIBRARY_PATH") {
        c.env("LD_LIBRARY_PATH", path);
    }
    #[cfg(unix)]
    {
        use std::os::unix::process::CommandExt;
        c.arg0("aurora-js-sandbox");
    }
    Ok(c)
}

/// Idle sandboxes, and how many exist in all.
struct Pool {
    state: Mutex<(Vec<Worker>, usize)>,
    freed: Condvar,
    max_live: usize,
    max_idle: usize,
}

fn pool() -> &'static Pool {
    static POOL: OnceLock<Pool> = OnceLock::new();
    POOL.get_or_init(|| {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        Pool {
            state: Mutex::new((Vec::new(), 0)),
            freed: Condvar::new(),
            max_live: (4 * cores).max(4),
            max_idle: cores.clamp(2, 8),
        }
    })
}

impl Pool {
    /// An idle sandbox, or a new one — waiting at most `wait` while
    /// `max_live` exist, then [`Failure::Unavailable`].
    fn take(&self, wait: Duration) -> Result<Worker, Failure> {
        let deadline = Instant::now() + wait;
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            if let Some(w) = state.0.pop() {
                return Ok(w);
            }
            if state.1 < self.max_live {
                state.1 += 1;
                break;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(Failure::Unavailable(format!(
                    "all {} sandbox processes stayed busy for {wait:?}",
                    self.max_live
                )));
            }
            state = self.freed.wait_timeout(state, left).map(|(s, _)| s).unwrap_or_else(|e| e.into_inner().0);
        }
        drop(state);
        Worker::start().inspect_err(|_| self.forget())
    }

    /// Takes back a healthy sandbox.
    fn give(&self, w: Worker) {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if state.0.len() < self.max_idle {
            state.0.push(w);
        } else {
            state.1 -= 1;
            drop(state);
            drop(w);
        }
        self.freed.notify_one();
    }

    /// A sandbox was killed or dropped.
    fn forget(&self) {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        state.1 = state.1.saturating_sub(1);
        self.freed.notify_one();
    }
}

/// The script evaluations of one query: a sandbox process checked out of
/// the pool (returned on drop) and the time spent so far against
/// [`Limits::query_budget`]. `Send`, not `Sync`: one query, one thread.
pub struct Session {
    limits: Limits,
    spent: Duration,
    worker: Option<Worker>,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session").field("limits", &self.limits).field("spent", &self.spent).finish_non_exhaustive()
    }
}

impl Session {
    /// A session with these limits (no process is taken until the first call).
    pub fn new(limits: Limits) -> Self {
        Self { limits, spent: Duration::ZERO, worker: None }
    }

    /// Time spent in evaluations so far (the host's wall clock, including
    /// the round trip to the sandbox).
    pub fn spent(&self) -> Duration {
        self.spent
    }

    /// The process id of the sandbox this session holds, if it holds one
    /// (for diagnostics: each sandbox is a child process of the host).
    pub fn sandbox_pid(&self) -> Option<u32> {
        self.worker.as_ref().map(|w| w.child.id())
    }

    /// Compiles `body` as the body of a function of `params` without calling it.
    pub fn check(&mut self, params: &[String], body: &str) -> Result<(), Failure> {
        let limits = self.wire(self.limits.time);
        self.call(Request::Check { params: params.to_vec(), body: body.to_string(), limits }).map(drop)
    }

    /// Gives the session's sandbox back to the pool (the next evaluation
    /// takes one again). Callers that pause between evaluations for as long
    /// as their caller likes — a query stream between items — call this, so
    /// idle sessions never hold the pool's sandboxes.
    pub fn release(&mut self) {
        if let Some(w) = self.worker.take() {
            pool().give(w);
        }
    }

    /// Calls the function body with `args` as its parameters' values, on a
    /// fresh runtime in a sandbox process.
    pub fn evaluate(&mut self, params: &[String], body: &str, args: Vec<Value>) -> Result<Value, Failure> {
        let limits = self.wire(self.limits.time);
        self.call(Request::Eval { params: params.to_vec(), body: body.to_string(), args, limits })
    }

    fn wire(&self, time: Duration) -> WireLimits {
        WireLimits {
            time_micros: u64::try_from(time.as_micros()).unwrap_or(u64::MAX),
            memory: self.limits.memory as u64,
            output: self.limits.output as u64,
        }
    }

    fn call(&mut self, mut request: Request) -> Result<Value, Failure> {
        let left = self.limits.query_budget.saturating_sub(self.spent);
        if left.is_zero() {
            return Err(Failure::QueryBudget(self.limits.query_budget));
        }
        // The budget, not the per-evaluation limit, may be what binds.
        let time = self.limits.time.min(left);
        let by_budget = time < self.limits.time;
        let limits = self.wire(time);
        match &mut request {
            Request::Check { limits: l, .. } | Request::Eval { limits: l, .. } => *l = limits,
        }
        let mut worker = match self.worker.take() {
            Some(w) => w,
            None => pool().take(left)?,
        };
        let started = Instant::now();
        let result = worker.call(&request, time + KILL_GRACE);
        self.spent += started.elapsed();
        let over_time = || {
            if by_budget {
                Failure::QueryBudget(self.limits.query_budget)
            } else {
                Failure::TimeLimit(self.limits.time)
            }
        };
        match result {
            Ok(reply) => {
                self.worker = Some(worker);
                reply.map_err(|fault| match fault {
                    Fault::Syntax(m) => Failure::Syntax(m),
                    Fault::Threw(m) => Failure::Threw(m),
                    Fault::TimeLimit => over_time(),
                    Fault::MemoryLimit => Failure::MemoryLimit(self.limits.memory),
                    Fault::OutputTooLarge => Failure::OutputTooLarge(self.limits.output),
                    Fault::Unrepresentable(m) => Failure::Unrepresentable(m),
                    Fault::Internal(m) => Failure::Crashed(m),
                })
            }
            Err(lost) => {
                drop(worker);
                pool().forget();
                Err(match lost {
                    Lost::TimedOut => over_time(),
                    Lost::Died(how) => Failure::Crashed(how),
                })
            }
        }
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        if let Some(w) = self.worker.take() {
            pool().give(w);
        }
    }
}

/// The two system calls the host side needs beyond `std`.
#[allow(unsafe_code)]
mod sys {
    use std::os::fd::AsRawFd;
    use std::time::Duration;

    /// Makes reads from the sandbox's stdout return `WouldBlock` instead of waiting.
    pub(super) fn set_nonblocking(fd: &impl AsRawFd) -> std::io::Result<()> {
        let fd = fd.as_raw_fd();
        // SAFETY: fcntl on a file descriptor this process owns (the pipe
        // from the child), with integer arguments only.
        let ok = unsafe {
            let flags = libc::fcntl(fd, libc::F_GETFL);
            flags >= 0 && libc::fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK) >= 0
        };
        if ok {
            Ok(())
        } else {
            Err(std::io::Error::last_os_error())
        }
    }

    /// Waits until `fd` is readable (or closed), or `at_most` has passed.
    pub(super) fn wait_readable(fd: &impl AsRawFd, at_most: Duration) {
        let mut p = libc::pollfd { fd: fd.as_raw_fd(), events: libc::POLLIN, revents: 0 };
        let ms = i32::try_from(at_most.as_micros().div_ceil(1000)).unwrap_or(i32::MAX);
        // SAFETY: `p` is one valid pollfd owned by this frame; its fd is open.
        unsafe {
            libc::poll(&mut p, 1, ms);
        }
    }
}
