//! Jobs over the API: [`NewJob`] to enqueue, [`JobSummary`] as listed.

use crate::client::bad_response;
use aurora::{DocId, Job, Priority, Result, Value};
use serde_json::{json, Map, Value as Json};
use std::time::Duration;

/// A job to enqueue (`POST /v1/jobs`); the fields the server takes.
///
/// ```
/// use aurora_client::NewJob;
/// let job = NewJob::new("send_email").payload(aurora::Value::from("ada@x.io")).queue("mail");
/// assert_eq!(job.to_json()["queue"], "mail");
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct NewJob {
    job_type: String,
    payload: Option<Value>,
    queue: Option<String>,
    priority: Option<Priority>,
    max_retries: Option<u32>,
    delay: Option<Duration>,
    unique_key: Option<String>,
}

fn priority_name(p: Priority) -> &'static str {
    match p {
        Priority::Low => "low",
        Priority::Normal => "normal",
        Priority::High => "high",
        Priority::Critical => "critical",
    }
}

impl NewJob {
    /// A job of `job_type` (the handler's name).
    pub fn new(job_type: impl Into<String>) -> Self {
        Self {
            job_type: job_type.into(),
            payload: None,
            queue: None,
            priority: None,
            max_retries: None,
            delay: None,
            unique_key: None,
        }
    }

    /// Its payload.
    pub fn payload(mut self, payload: Value) -> Self {
        self.payload = Some(payload);
        self
    }

    /// Its named queue.
    pub fn queue(mut self, queue: impl Into<String>) -> Self {
        self.queue = Some(queue.into());
        self
    }

    /// Its priority.
    pub fn priority(mut self, priority: Priority) -> Self {
        self.priority = Some(priority);
        self
    }

    /// Retries after a failure.
    pub fn max_retries(mut self, n: u32) -> Self {
        self.max_retries = Some(n);
        self
    }

    /// Runs no sooner than `delay` from now.
    pub fn delay(mut self, delay: Duration) -> Self {
        self.delay = Some(delay);
        self
    }

    /// At most one pending job with this key.
    pub fn unique_key(mut self, key: impl Into<String>) -> Self {
        self.unique_key = Some(key.into());
        self
    }

    /// The job for the embedded queue.
    pub fn to_job(&self) -> Job {
        let mut job = Job::new(self.job_type.clone());
        if let Some(p) = &self.payload {
            job = job.payload(p.clone());
        }
        if let Some(q) = &self.queue {
            job = job.queue(q.clone());
        }
        if let Some(p) = self.priority {
            job = job.priority(p);
        }
        if let Some(n) = self.max_retries {
            job = job.max_retries(n);
        }
        if let Some(d) = self.delay {
            job = job.delay(d);
        }
        if let Some(k) = &self.unique_key {
            job = job.unique_key(k.clone());
        }
        job
    }

    /// The request body.
    pub fn to_json(&self) -> Json {
        let mut m = Map::new();
        m.insert("type".into(), json!(self.job_type));
        if let Some(p) = &self.payload {
            m.insert("payload".into(), p.to_json());
        }
        if let Some(q) = &self.queue {
            m.insert("queue".into(), json!(q));
        }
        if let Some(p) = self.priority {
            m.insert("priority".into(), json!(priority_name(p)));
        }
        if let Some(n) = self.max_retries {
            m.insert("max_retries".into(), json!(n));
        }
        if let Some(d) = self.delay {
            m.insert("delay_ms".into(), json!(d.as_millis() as u64));
        }
        if let Some(k) = &self.unique_key {
            m.insert("unique_key".into(), json!(k));
        }
        Json::Object(m)
    }
}

/// A job as the server lists it.
#[derive(Debug, Clone, PartialEq)]
pub struct JobSummary {
    /// Its id.
    pub id: DocId,
    /// The handler's name.
    pub job_type: String,
    /// Its queue.
    pub queue: String,
    /// Its state (`pending`, `running`, `completed`, `failed`, `cancelled`…).
    pub status: String,
    /// Runs started.
    pub attempts: u64,
    /// The last failure's message.
    pub last_error: Option<String>,
    /// Its payload.
    pub payload: Value,
}

impl JobSummary {
    pub(crate) fn from_json(j: &Json) -> Result<Self> {
        let s = |k: &str| j.get(k).and_then(Json::as_str).map(str::to_string);
        Ok(Self {
            id: DocId::from_json(j.get("id").ok_or_else(|| bad_response("job `id`"))?)?,
            job_type: s("type").ok_or_else(|| bad_response("job `type`"))?,
            queue: s("queue").unwrap_or_default(),
            status: s("status").ok_or_else(|| bad_response("job `status`"))?,
            attempts: j.get("attempts").and_then(Json::as_u64).unwrap_or(0),
            last_error: s("last_error"),
            payload: match j.get("payload") {
                Some(p) => Value::from_json(p)?,
                None => Value::Null,
            },
        })
    }
}
