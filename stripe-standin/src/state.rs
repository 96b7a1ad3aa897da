//! The stand-in's memory: Stripe's objects, meter events, idempotent answers, faults
//! and the webhook endpoint.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use axum::http::StatusCode;
use serde_json::Value;

use crate::faults::Fault;

/// One recorded meter event.
#[derive(Clone, Debug, serde::Serialize)]
pub struct MeterEvent {
    /// Its de-duplication key.
    pub identifier: String,
    /// The meter's event name.
    pub event_name: String,
    /// `payload[stripe_customer_id]`.
    pub customer: String,
    /// `payload[value]`, an integer.
    pub value: i64,
    /// Unix seconds.
    pub timestamp: i64,
}

/// Objects by kind and id.
#[derive(Default)]
pub struct Objects {
    /// `customers`, `checkout_sessions`, `subscriptions`, `invoices`, `meters`, … by id.
    pub by_kind: HashMap<&'static str, BTreeMap<String, Value>>,
    /// Meter events in arrival order.
    pub meter_events: Vec<MeterEvent>,
    /// Identifiers seen.
    pub identifiers: HashSet<String>,
    /// Events for webhooks, in creation order.
    pub events: Vec<Value>,
}

/// Where events are delivered.
#[derive(Clone, Debug, Default)]
pub struct Endpoint {
    /// The webhook URL.
    pub url: Option<String>,
    /// The signing secret.
    pub secret: String,
    /// Deliver each event once as soon as it exists.
    pub auto_deliver: bool,
}

/// A kept answer: the request's fingerprint, the status and the body.
pub(crate) type Kept = (String, StatusCode, Vec<u8>);

/// One stand-in.
pub struct StandIn {
    /// The accepted secret key.
    pub key: String,
    /// Objects and events.
    pub objects: Mutex<Objects>,
    /// Idempotent answers: key → (fingerprint, status, body).
    idempotent: Mutex<HashMap<String, Kept>>,
    /// Faults to inject.
    pub faults: Mutex<Vec<Fault>>,
    /// The webhook endpoint.
    pub endpoint: Mutex<Endpoint>,
    /// Requests that reached Stripe's routes (faults included).
    pub requests: AtomicU64,
    next_id: AtomicU64,
}

impl StandIn {
    /// A stand-in accepting `key`.
    pub fn new(key: &str) -> Self {
        Self {
            key: key.to_owned(),
            objects: Mutex::default(),
            idempotent: Mutex::default(),
            faults: Mutex::default(),
            endpoint: Mutex::default(),
            requests: AtomicU64::new(0),
            next_id: AtomicU64::new(1),
        }
    }

    /// A new id with Stripe's prefix (`cus_`, `cs_test_`, `evt_`, …).
    pub fn id(&self, prefix: &str) -> String {
        format!("{prefix}{:06}", self.next_id.fetch_add(1, Ordering::SeqCst))
    }

    pub(crate) fn replay(&self, key: &str) -> Option<Kept> {
        self.idempotent
            .lock()
            .expect("idempotent")
            .get(key)
            .cloned()
    }

    pub(crate) fn remember(&self, key: String, print: String, status: StatusCode, body: Vec<u8>) {
        self.idempotent
            .lock()
            .expect("idempotent")
            .insert(key, (print, status, body));
    }

    /// The sum of meter event values for `customer` (all time).
    pub fn meter_total(&self, customer: &str) -> i64 {
        let o = self.objects.lock().expect("objects");
        o.meter_events
            .iter()
            .filter(|e| e.customer == customer)
            .map(|e| e.value)
            .sum()
    }
}

/// Unix seconds now.
pub fn now_s() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}
