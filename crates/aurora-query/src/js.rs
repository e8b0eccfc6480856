//! `Expression::Custom`: JavaScript function bodies evaluated on an embedded
//! QuickJS (rquickjs), sandboxed — no I/O (only the language's built-ins),
//! a memory limit, a stack limit, and a time limit per evaluation enforced
//! by QuickJS's interrupt handler.
//!
//! The body gets the declared dependencies as parameters:
//! `if (age < 18) return 'minor'; return 'adult';` with dependencies
//! `["age"]` runs as `(function(age) { … })(doc.age)`. Each thread keeps one
//! runtime and a cache of compiled functions.

use aurora_core::{Document, Fields, Value};
use rquickjs::{Array, Context, Ctx, Function, Object, Persistent, Runtime};
use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use std::time::{Duration, Instant};

/// Memory a script runtime may allocate.
pub const MEMORY_LIMIT: usize = 16 << 20;
/// Longest time one evaluation may run.
pub const TIME_LIMIT: Duration = Duration::from_millis(50);
/// Most compiled functions a thread keeps.
const CACHE: usize = 256;

struct Engine {
    context: Context,
    deadline: Rc<RefCell<Instant>>,
    compiled: HashMap<String, Persistent<Function<'static>>>,
    // Declared last: dropped after the context and the functions.
    _runtime: Runtime,
}

thread_local! {
    static ENGINE: RefCell<Option<Engine>> = const { RefCell::new(None) };
}

fn engine() -> Result<Engine, String> {
    let runtime = Runtime::new().map_err(|e| e.to_string())?;
    runtime.set_memory_limit(MEMORY_LIMIT);
    runtime.set_max_stack_size(256 << 10);
    let deadline = Rc::new(RefCell::new(Instant::now()));
    let d = Rc::clone(&deadline);
    runtime.set_interrupt_handler(Some(Box::new(move || Instant::now() > *d.borrow())));
    let context = Context::full(&runtime).map_err(|e| e.to_string())?;
    Ok(Engine { context, deadline, compiled: HashMap::new(), _runtime: runtime })
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
                o.set(k.as_str(), to_js(ctx, x)?)?;
            }
            o.into_value()
        }
    })
}

fn from_js(v: &rquickjs::Value<'_>, depth: usize) -> Result<Value, String> {
    if depth > 32 {
        return Err("result nested too deeply".into());
    }
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
        let in_range = f.fract() == 0.0 && f.abs() < 9.0e15;
        return Ok(if in_range { Value::Int(f as i64) } else { Value::Float(f) });
    }
    if let Some(s) = v.as_string() {
        return s.to_string().map(Value::String).map_err(|e| e.to_string());
    }
    if let Some(a) = v.as_array() {
        let items: Result<Vec<Value>, String> = a
            .iter::<rquickjs::Value<'_>>()
            .map(|x| x.map_err(|e| e.to_string()).and_then(|x| from_js(&x, depth + 1)))
            .collect();
        return items.map(Value::Array);
    }
    if let Some(o) = v.as_object() {
        let mut fields = Fields::new();
        for item in o.props::<String, rquickjs::Value<'_>>() {
            let (k, x) = item.map_err(|e| e.to_string())?;
            fields.insert(k, from_js(&x, depth + 1)?);
        }
        return Ok(Value::Object(fields));
    }
    Err(format!("cannot return a {} from a computed field", v.type_name()))
}

/// Compiles a function body without running it (for registration).
pub(crate) fn check(code: &str, dependencies: &[String]) -> Result<(), String> {
    with_function(code, dependencies, |_, _| Ok(Value::Null)).map(drop)
}

/// Evaluates a function body with the dependencies' values as parameters.
pub(crate) fn evaluate(code: &str, dependencies: &[String], doc: &Document) -> Result<Value, String> {
    with_function(code, dependencies, |ctx, func| {
        let mut args = rquickjs::function::Args::new(ctx.clone(), dependencies.len());
        for d in dependencies {
            let v = doc.get_path(d).cloned().unwrap_or(Value::Null);
            args.push_arg(to_js(ctx, &v).map_err(|e| e.to_string())?).map_err(|e| e.to_string())?;
        }
        let out: rquickjs::Value<'_> = func.call_arg(args).map_err(|e| describe(ctx, e))?;
        from_js(&out, 0)
    })
}

/// Runs `body` with the compiled function for `code` (compiling it once per thread).
fn with_function(
    code: &str,
    dependencies: &[String],
    body: impl for<'js> FnOnce(&Ctx<'js>, Function<'js>) -> Result<Value, String>,
) -> Result<Value, String> {
    ENGINE.with(|cell| {
        let mut slot = cell.borrow_mut();
        if slot.is_none() {
            *slot = Some(engine()?);
        }
        let Some(engine) = slot.as_mut() else { return Err("no script engine".into()) };
        *engine.deadline.borrow_mut() = Instant::now() + TIME_LIMIT;
        let params: Vec<String> = dependencies.iter().map(|d| d.replace('.', "_")).collect();
        let source = format!("(function({}) {{ {code} \n}})", params.join(", "));
        if engine.compiled.len() >= CACHE {
            engine.compiled.clear();
        }
        let Engine { context, compiled, .. } = engine;
        context.with(|ctx| {
            let func = match compiled.get(&source) {
                Some(p) => p.clone().restore(&ctx).map_err(|e| e.to_string())?,
                None => {
                    let f: Function<'_> = ctx.eval(source.as_bytes().to_vec()).map_err(|e| describe(&ctx, e))?;
                    compiled.insert(source.clone(), Persistent::save(&ctx, f.clone()));
                    f
                }
            };
            body(&ctx, func)
        })
    })
}

fn describe(ctx: &Ctx<'_>, e: rquickjs::Error) -> String {
    if matches!(e, rquickjs::Error::Exception) {
        let caught = ctx.catch();
        if let Some(ex) = caught.as_exception() {
            return ex.message().unwrap_or_else(|| "exception".into());
        }
        if let Some(s) = caught.as_string() {
            return s.to_string().unwrap_or_default();
        }
        return "the script threw (or exceeded its time or memory limit)".into();
    }
    e.to_string()
}
