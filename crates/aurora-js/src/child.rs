//! The sandbox side: the entry hook that turns a re-executed copy of the
//! host program into a sandbox before its `main` runs, the request loop, and
//! the evaluation itself — a fresh QuickJS runtime and context per request.

use crate::protocol::{self, Fault, Reply, Request, WireLimits};
use aurora_core::{Fields, Value};
use rquickjs::context::intrinsic;
use rquickjs::object::Property;
use rquickjs::{Array, Context, Ctx, Function, Object, Persistent, Runtime};
use std::cell::Cell;
use std::io::{self, Write};
use std::rc::Rc;
use std::time::{Duration, Instant};

/// The environment variable that marks a sandbox process (its value is the
/// host's process id).
pub(crate) const ENV: &str = "AURORA_JS_SANDBOX";

/// Largest error message a sandbox sends back, in bytes.
const MAX_MESSAGE: usize = 1024;

/// JavaScript stack a script may use.
const STACK: usize = 256 << 10;

/// The built-ins a script gets besides the base objects (`Object`,
/// `Function`, `Array`, `String`, `Number`, `Boolean`, `Symbol`, `Math`,
/// `Reflect`, errors, iterators and generators): `Date`, `RegExp`, `JSON`,
/// `Map`/`Set`/`WeakMap`/`WeakSet`, `Promise` (jobs are never run), and the parser (removed again from
/// scripts by `STERILIZE`). Left out — a computed field has no use for them,
/// and each costs time on every evaluation's fresh context: typed arrays,
/// `Proxy`, `BigInt`, `WeakRef`.
type Intrinsics = (
    intrinsic::Date,
    intrinsic::Eval,
    intrinsic::RegExpCompiler,
    intrinsic::RegExp,
    intrinsic::Json,
    intrinsic::MapSet,
    // Async functions and generators need it (QuickJS aborts creating one without).
    intrinsic::Promise,
);

/// Run before every evaluation: no dynamic code (no `eval`, no `Function`
/// constructor of any kind), so a function's source text is where the
/// parser put it — which is what the function-body check relies on.
const STERILIZE: &str = r#"(function () {
  for (const f of [function () {}, function* () {}, async function () {}, async function* () {}]) {
    Object.defineProperty(Object.getPrototypeOf(f), 'constructor',
      { value: undefined, writable: false, enumerable: false, configurable: false });
  }
  delete globalThis.eval;
  delete globalThis.Function;
})();"#;

// The hook: an ELF `.init_array` entry runs before `main` in every program
// that links this crate. It returns at once unless `ENV` is set, which only
// the host's pool does when it starts a sandbox.
#[cfg(any(target_os = "linux", target_os = "android"))]
#[allow(unsafe_code)]
#[used]
#[link_section = ".init_array"]
static ENTRY: extern "C" fn() = entry;

#[cfg_attr(not(any(target_os = "linux", target_os = "android")), allow(dead_code))]
extern "C" fn entry() {
    let Some(host) = std::env::var_os(ENV) else { return };
    // The pool also names the process `aurora-js-sandbox` (argv[0]): a
    // program started by hand with the variable set runs its own `main`.
    let started_by_pool = std::fs::read("/proc/self/cmdline").is_ok_and(|c| c.starts_with(b"aurora-js-sandbox\0"));
    if !started_by_pool {
        return;
    }
    let host: Option<i32> = host.to_str().and_then(|s| s.parse().ok());
    harden(host);
    let code = std::panic::catch_unwind(serve).unwrap_or(2);
    std::process::exit(code);
}

/// Limits the sandbox process itself: no core dumps, no new privileges,
/// killed when the host dies (and gone at once if it already has).
#[allow(unsafe_code)]
fn harden(host: Option<i32>) {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    // SAFETY: plain system calls on this process with valid, owned arguments;
    // no memory is shared with anything else at this point (before `main`).
    unsafe {
        let none = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
        libc::setrlimit(libc::RLIMIT_CORE, &none);
        libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
        if host.is_some_and(|h| libc::getppid() != h) {
            libc::_exit(0);
        }
    }
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    let _ = host;
}

/// The runtime's allocator: `malloc` with a byte count and a limit, which
/// records that it refused an allocation, so running out of memory is told
/// apart from a script that throws, whatever QuickJS then throws.
#[derive(Clone, Default)]
struct Metered {
    used: Rc<Cell<usize>>,
    limit: Rc<Cell<usize>>,
    refused: Rc<Cell<bool>>,
}

impl Metered {
    fn admit(&self, more: usize) -> bool {
        let limit = if self.limit.get() == 0 { usize::MAX } else { self.limit.get() };
        let ok = self.used.get().checked_add(more).is_some_and(|n| n <= limit);
        if !ok {
            self.refused.set(true);
        }
        ok
    }

    #[allow(unsafe_code)]
    fn track(&self, ptr: *mut u8) -> *mut u8 {
        if !ptr.is_null() {
            // SAFETY: `ptr` was just returned by malloc/calloc/realloc.
            self.used.set(self.used.get() + unsafe { malloc_usable_size(ptr) });
        }
        ptr
    }
}

#[allow(unsafe_code)]
unsafe fn malloc_usable_size(ptr: *mut u8) -> usize {
    // SAFETY: the caller passes a live pointer from this allocator (or null).
    unsafe { libc::malloc_usable_size(ptr.cast()) }
}

// SAFETY: every pointer handed out comes from the C allocator and is freed
// or resized only by it; sizes are read with `malloc_usable_size`.
#[allow(unsafe_code)]
unsafe impl rquickjs::allocator::Allocator for Metered {
    fn alloc(&mut self, size: usize) -> *mut u8 {
        if !self.admit(size) {
            return std::ptr::null_mut();
        }
        // SAFETY: plain malloc.
        self.track(unsafe { libc::malloc(size.max(1)) }.cast())
    }

    fn calloc(&mut self, count: usize, size: usize) -> *mut u8 {
        if !self.admit(count.saturating_mul(size)) {
            return std::ptr::null_mut();
        }
        // SAFETY: plain calloc.
        self.track(unsafe { libc::calloc(count.max(1), size.max(1)) }.cast())
    }

    unsafe fn dealloc(&mut self, ptr: *mut u8) {
        if ptr.is_null() {
            return;
        }
        // SAFETY: `ptr` is live and from this allocator (the trait's contract).
        let size = unsafe { malloc_usable_size(ptr) };
        self.used.set(self.used.get().saturating_sub(size));
        // SAFETY: as above; freed once.
        unsafe { libc::free(ptr.cast()) };
    }

    unsafe fn realloc(&mut self, ptr: *mut u8, new_size: usize) -> *mut u8 {
        // SAFETY: `ptr` is null or live and from this allocator.
        let old = if ptr.is_null() { 0 } else { unsafe { malloc_usable_size(ptr) } };
        if new_size > old && !self.admit(new_size - old) {
            return std::ptr::null_mut();
        }
        // SAFETY: realloc of a live pointer (or null); on failure the old block stays valid.
        let new = unsafe { libc::realloc(ptr.cast(), new_size.max(1)) }.cast::<u8>();
        if !new.is_null() {
            self.used.set(self.used.get().saturating_sub(old));
            self.track(new);
        }
        new
    }

    unsafe fn usable_size(ptr: *mut u8) -> usize {
        // SAFETY: `ptr` is live and from this allocator.
        unsafe { malloc_usable_size(ptr) }
    }
}

/// CPU time this thread has used. The engine's own check counts CPU time, so
/// a script is not stopped early because a busy machine did not schedule
/// the sandbox; the wall-clock limit is the host's (a timed wait, then
/// `SIGKILL`).
#[allow(unsafe_code)]
fn cpu_time() -> Duration {
    #[cfg(unix)]
    {
        let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
        // SAFETY: `ts` is a valid, writable timespec owned by this frame.
        let ok = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) } == 0;
        if ok {
            return Duration::new(u64::try_from(ts.tv_sec).unwrap_or(0), u32::try_from(ts.tv_nsec).unwrap_or(0));
        }
    }
    static START: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    START.get_or_init(Instant::now).elapsed()
}

/// Answers requests until the host closes the pipe. The runtime for the
/// next request is built (and the one of the last request dropped) after
/// each reply is sent, while the host is busy with it.
fn serve() -> i32 {
    let mut input = io::stdin().lock();
    let mut output = io::BufWriter::new(io::stdout().lock());
    let hello = protocol::encode(&protocol::HELLO).unwrap_or_default();
    if protocol::write_frame(&mut output, &hello).is_err() {
        return 1;
    }
    let mut next = Fresh::new();
    loop {
        let Ok(frame) = protocol::read_frame(&mut input) else { return 0 };
        let fresh = std::mem::replace(&mut next, Err(Fault::Internal("no runtime".into())));
        let mut used = None;
        let reply: Reply = match (protocol::decode::<Request>(&frame), fresh) {
            (Ok(request), Ok(fresh)) => {
                let run = std::panic::AssertUnwindSafe(|| fresh.handle(request));
                match std::panic::catch_unwind(run) {
                    Ok((reply, fresh)) => {
                        used = Some(fresh);
                        reply
                    }
                    Err(_) => Err(Fault::Internal("the engine panicked".into())),
                }
            }
            (Err(e), _) => Err(Fault::Internal(format!("bad request: {e}"))),
            (_, Err(fault)) => Err(fault),
        };
        let bytes = protocol::encode(&reply)
            .or_else(|e| protocol::encode(&Reply::Err(Fault::Internal(e.to_string()))))
            .unwrap_or_default();
        if protocol::write_frame(&mut output, &bytes).is_err() || output.flush().is_err() {
            return 1;
        }
        drop(used);
        next = Fresh::new();
    }
}

/// A runtime and context that no script has touched: built-ins intact,
/// dynamic code removed, the original `Function.prototype.toString` kept.
pub(crate) struct Fresh {
    // Field order is drop order: the saved function before its context,
    // the context before its runtime.
    to_string: Persistent<Function<'static>>,
    context: Context,
    deadline: Rc<Cell<Duration>>,
    fired: Rc<Cell<bool>>,
    memory: Metered,
    _runtime: Runtime,
}

impl Fresh {
    pub(crate) fn new() -> Result<Fresh, Fault> {
        let internal = |e: rquickjs::Error| Fault::Internal(e.to_string());
        let memory = Metered::default();
        let runtime = Runtime::new_with_alloc(memory.clone()).map_err(internal)?;
        runtime.set_max_stack_size(STACK);
        let deadline = Rc::new(Cell::new(cpu_time() + Duration::from_secs(3600)));
        let fired = Rc::new(Cell::new(false));
        let (d, flag) = (Rc::clone(&deadline), Rc::clone(&fired));
        runtime.set_interrupt_handler(Some(Box::new(move || {
            let late = cpu_time() >= d.get();
            if late {
                flag.set(true);
            }
            late
        })));
        let context = Context::custom::<Intrinsics>(&runtime).map_err(internal)?;
        let to_string = context.with(|ctx| -> rquickjs::Result<Persistent<Function<'static>>> {
            let f: Function<'_> = ctx.eval("Function.prototype.call.bind(Function.prototype.toString)")?;
            ctx.eval::<(), _>(STERILIZE)?;
            Ok(Persistent::save(&ctx, f))
        });
        let to_string = to_string.map_err(internal)?;
        Ok(Fresh { to_string, context, deadline, fired, memory, _runtime: runtime })
    }

    /// Serves one request; returns the used runtime for the caller to drop
    /// after replying.
    pub(crate) fn handle(self, request: Request) -> (Reply, Fresh) {
        let (params, body, args, limits) = match request {
            Request::Check { params, body, limits } => (params, body, None, limits),
            Request::Eval { params, body, args, limits } => (params, body, Some(args), limits),
        };
        self.memory.limit.set(usize::try_from(limits.memory).unwrap_or(usize::MAX));
        self.deadline.set(cpu_time() + Duration::from_micros(limits.time_micros));
        let out = self.context.with(|ctx| match self.to_string.clone().restore(&ctx) {
            Ok(to_string) => {
                let trips = Trips { time: &self.fired, memory: &self.memory.refused };
                run(&ctx, &to_string, &params, &body, args, limits, trips)
            }
            Err(e) => Err(Fault::Internal(e.to_string())),
        });
        (out, self)
    }
}

fn run<'js>(
    ctx: &Ctx<'js>,
    to_string: &Function<'js>,
    params: &[String],
    body: &str,
    args: Option<Vec<Value>>,
    limits: WireLimits,
    trips: Trips<'_>,
) -> Reply {
    let fault = |e: rquickjs::Error| describe(ctx, e, trips);
    // The body must parse as the body of this one function expression: the
    // parsed function's own source text (which cannot be forged without
    // dynamic code) must be exactly the text given, so a body that closes
    // the function early and goes on at top level is refused.
    let expected = format!("function anonymous({}\n) {{\n{body}\n}}", params.join(","));
    let value: rquickjs::Value<'js> = ctx.eval(format!("({expected})")).map_err(|e| match fault(e) {
        Fault::Threw(m) => Fault::Syntax(m),
        other => other,
    })?;
    let Some(func) = value.as_function().cloned() else {
        return Err(Fault::Syntax("the code is not a function body".into()));
    };
    let text: String = to_string.call((func.clone(),)).map_err(fault)?;
    if text != expected {
        return Err(Fault::Syntax("the code is not one function body (it closes the function early)".into()));
    }
    let Some(args) = args else { return Ok(Value::Null) };
    let mut call = rquickjs::function::Args::new(ctx.clone(), args.len());
    for v in &args {
        call.push_arg(to_js(ctx, v).map_err(fault)?).map_err(fault)?;
    }
    let out: rquickjs::Value<'js> = func.call_arg(call).map_err(fault)?;
    let mut budget = usize::try_from(limits.output).unwrap_or(usize::MAX);
    // A fresh `{}`'s prototype is the intrinsic `Object.prototype`, whatever
    // the script did to the global `Object`.
    let plain = Object::new(ctx.clone()).map_err(fault)?.get_prototype();
    let v = Output { fault: &fault, plain: plain.as_ref() }.convert(&out, 0, &mut budget)?;
    let size = protocol::encode(&v).map_err(|e| Fault::Internal(e.to_string()))?.len();
    if size as u64 > limits.output {
        return Err(Fault::OutputTooLarge);
    }
    Ok(v)
}

/// Classifies a failure: the interrupt handler fired (time), the allocator
/// refused an allocation (memory; QuickJS may then throw `null`), or the
/// script threw (message bounded).
/// What tripped during an evaluation: the interrupt handler (time) or the
/// allocator (memory).
#[derive(Clone, Copy)]
struct Trips<'a> {
    time: &'a Cell<bool>,
    memory: &'a Cell<bool>,
}

fn describe(ctx: &Ctx<'_>, e: rquickjs::Error, trips: Trips<'_>) -> Fault {
    if trips.time.get() {
        return Fault::TimeLimit;
    }
    let message = match e {
        rquickjs::Error::Exception => {
            let caught = ctx.catch();
            if let Some(ex) = caught.as_exception() {
                let name = ex.get::<_, String>("name").unwrap_or_else(|_| "Error".into());
                format!("{name}: {}", ex.message().unwrap_or_default())
            } else if let Some(s) = caught.as_string() {
                s.to_string().unwrap_or_default()
            } else {
                format!("a thrown {}", caught.type_name())
            }
        }
        other => other.to_string(),
    };
    if trips.time.get() {
        Fault::TimeLimit
    } else if trips.memory.get() || message.contains("out of memory") {
        Fault::MemoryLimit
    } else {
        Fault::Threw(protocol::bounded(&message, MAX_MESSAGE))
    }
}

fn to_js<'js>(ctx: &Ctx<'js>, v: &Value) -> rquickjs::Result<rquickjs::Value<'js>> {
    Ok(match v {
        Value::Null => rquickjs::Value::new_null(ctx.clone()),
        Value::Bool(b) => rquickjs::Value::new_bool(ctx.clone(), *b),
        Value::Int(i) => rquickjs::Value::new_number(ctx.clone(), *i as f64),
        Value::Float(f) => rquickjs::Value::new_number(ctx.clone(), *f),
        Value::String(s) => rquickjs::String::from_str(ctx.clone(), s)?.into_value(),
        Value::Uuid(u) => rquickjs::String::from_str(ctx.clone(), &u.to_string())?.into_value(),
        Value::Timestamp(t) => rquickjs::String::from_str(ctx.clone(), &t.to_string())?.into_value(),
        Value::Bytes(b) => {
            let a = Array::new(ctx.clone())?;
            for (i, x) in b.iter().enumerate() {
                a.set(i, f64::from(*x))?;
            }
            a.into_value()
        }
        Value::Array(items) => {
            let a = Array::new(ctx.clone())?;
            for (i, x) in items.iter().enumerate() {
                a.set(i, to_js(ctx, x)?)?;
            }
            a.into_value()
        }
        Value::Object(fields) => {
            let o = Object::new(ctx.clone())?;
            for (k, x) in fields {
                // Defined as own data properties: a field named `__proto__`
                // is a field, not the object's prototype.
                let key = rquickjs::String::from_str(ctx.clone(), k)?;
                o.prop(key, Property::from(to_js(ctx, x)?).writable().enumerable().configurable())?;
            }
            o.into_value()
        }
    })
}

/// Converts a script's result into a [`Value`], exactly or not at all.
struct Output<'a, 'js> {
    /// Classifies an engine error (a getter or proxy trap that throws is
    /// [`Fault::Threw`], the time and memory limits theirs).
    fault: &'a dyn Fn(rquickjs::Error) -> Fault,
    /// The intrinsic `Object.prototype` (`None` if it could not be read).
    plain: Option<&'a Object<'js>>,
}

impl<'js> Output<'_, 'js> {
    /// An engine error while reading the result: an exception (a getter or
    /// trap threw) is the script's own failure; anything else (a string
    /// that is not valid Unicode, such as a lone surrogate) is a result
    /// that cannot be stored.
    fn error(&self, e: rquickjs::Error) -> Fault {
        if matches!(e, rquickjs::Error::Exception) {
            (self.fault)(e)
        } else {
            Fault::Unrepresentable(protocol::bounded(&e.to_string(), MAX_MESSAGE))
        }
    }

    /// Converts `v`, charging every value against `budget` (bytes of
    /// output), so a sparse array of length 2³⁰ fails fast instead of
    /// filling the sandbox's memory. Only what a [`Value`] holds exactly
    /// passes: `null`/`undefined`, booleans, numbers (integral ones below
    /// 2⁵³ as `Int`, `-0` stays a float), strings of valid Unicode, arrays
    /// and plain objects (prototype `Object.prototype` or `null`) whose keys
    /// are valid Unicode. A `Date`, `Map`, `Set`, class instance, function or
    /// symbol is [`Fault::Unrepresentable`], never an empty object.
    fn convert(&self, v: &rquickjs::Value<'js>, depth: usize, budget: &mut usize) -> Result<Value, Fault> {
        let charge = |budget: &mut usize, n: usize| -> Result<(), Fault> {
            *budget = budget.checked_sub(n.max(1)).ok_or(Fault::OutputTooLarge)?;
            Ok(())
        };
        if depth > 32 {
            return Err(Fault::Unrepresentable("result nested too deeply".into()));
        }
        charge(budget, 1)?;
        if v.is_null() || v.is_undefined() {
            return Ok(Value::Null);
        }
        if let Some(b) = v.as_bool() {
            return Ok(Value::Bool(b));
        }
        if let Some(i) = v.as_int() {
            return Ok(Value::Int(i64::from(i)));
        }
        if let Some(f) = v.as_float() {
            let integral = f.fract() == 0.0 && f.abs() < 9.0e15 && !(f == 0.0 && f.is_sign_negative());
            return Ok(if integral { Value::Int(f as i64) } else { Value::Float(f) });
        }
        if let Some(s) = v.as_string() {
            let s = s.to_string().map_err(|e| self.error(e))?;
            charge(budget, s.len())?;
            return Ok(Value::String(s));
        }
        if let Some(a) = v.as_array() {
            charge(budget, a.len())?;
            let mut items = Vec::new();
            for x in a.iter::<rquickjs::Value<'_>>() {
                items.push(self.convert(&x.map_err(|e| self.error(e))?, depth + 1, budget)?);
            }
            return Ok(Value::Array(items));
        }
        if v.is_function() || v.is_symbol() {
            return Err(Fault::Unrepresentable(format!("cannot return a {} from a computed field", v.type_name())));
        }
        if let Some(o) = v.as_object() {
            let proto = o.get_prototype();
            if proto.is_some() && proto.as_ref() != self.plain {
                return Err(Fault::Unrepresentable(
                    "cannot return an object that is not a plain object or array (a Date, Map, Set, class \
                     instance, …) from a computed field"
                        .into(),
                ));
            }
            let mut fields = Fields::new();
            // Keys as JS strings, converted with their length: a key with a
            // NUL keeps it, a lone surrogate is refused.
            for item in o.props::<rquickjs::String<'_>, rquickjs::Value<'_>>() {
                let (k, x) = item.map_err(|e| self.error(e))?;
                let k = k.to_string().map_err(|e| self.error(e))?;
                charge(budget, k.len())?;
                fields.insert(k, self.convert(&x, depth + 1, budget)?);
            }
            return Ok(Value::Object(fields));
        }
        Err(Fault::Unrepresentable(format!("cannot return a {} from a computed field", v.type_name())))
    }
}
