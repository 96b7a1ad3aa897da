//! What the gateway decided, per sprite: the last [`KEEP`] connections (time, host,
//! port, allowed or refused and by which rule, bytes each way), kept in memory; and the
//! stream of each allowed connection, counted and cuttable (a policy change, a budget
//! pause), whose log line is its handle.

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::task::{Context, Poll, Waker};

use serde::Serialize;

use super::limit::Limiter;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use utoipa::ToSchema;

/// Decisions kept per sprite.
pub const KEEP: usize = 200;

/// One decision, and for an allowed one its connection's counters.
#[derive(Debug)]
pub struct Entry {
    pub at: i64,
    pub host: String,
    pub port: u16,
    pub allowed: bool,
    /// The rule (or the address check) that decided.
    pub rule: String,
    /// Bytes the sprite sent.
    pub bytes_out: AtomicU64,
    /// Bytes the sprite received.
    pub bytes_in: AtomicU64,
    cut: AtomicBool,
    open: AtomicBool,
    wakers: Mutex<[Option<Waker>; 2]>,
}

/// A log line as the API shows it.
#[derive(Serialize, ToSchema)]
pub struct EntryView {
    pub at: String,
    pub host: String,
    pub port: u16,
    pub allowed: bool,
    pub rule: String,
    pub bytes_out: u64,
    pub bytes_in: u64,
    /// Still connected.
    pub open: bool,
}

impl Entry {
    /// A decision made now.
    pub fn new(host: &str, port: u16, allowed: bool, rule: String) -> Arc<Entry> {
        Arc::new(Entry {
            at: crate::db::now_s(),
            host: host.to_string(),
            port,
            allowed,
            rule,
            bytes_out: AtomicU64::new(0),
            bytes_in: AtomicU64::new(0),
            cut: AtomicBool::new(false),
            open: AtomicBool::new(allowed),
            wakers: Mutex::new([None, None]),
        })
    }

    /// Ends the connection: its next read or write fails, and a blocked one wakes.
    pub fn cut(&self) {
        self.cut.store(true, Ordering::SeqCst);
        for waker in self
            .wakers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter_mut()
        {
            if let Some(w) = waker.take() {
                w.wake();
            }
        }
    }

    /// The line as the API shows it.
    pub fn view(&self) -> EntryView {
        EntryView {
            at: crate::domain::rfc3339(self.at),
            host: self.host.clone(),
            port: self.port,
            allowed: self.allowed,
            rule: self.rule.clone(),
            bytes_out: self.bytes_out.load(Ordering::Relaxed),
            bytes_in: self.bytes_in.load(Ordering::Relaxed),
            open: self.open.load(Ordering::Relaxed),
        }
    }

    fn check(&self, cx: &Context<'_>, slot: usize) -> Option<std::io::Error> {
        self.wakers.lock().unwrap_or_else(|e| e.into_inner())[slot] = Some(cx.waker().clone());
        self.cut.load(Ordering::SeqCst).then(|| {
            std::io::Error::new(
                std::io::ErrorKind::ConnectionAborted,
                "cut by the sprite's network policy",
            )
        })
    }
}

/// Per-sprite decisions and open connections.
#[derive(Default)]
pub struct NetLog {
    lines: Mutex<HashMap<i64, VecDeque<Arc<Entry>>>>,
    open: Mutex<HashMap<i64, Vec<Weak<Entry>>>>,
}

impl NetLog {
    /// Records a decision.
    pub fn record(&self, sprite: i64, entry: &Arc<Entry>) {
        let mut lines = self.lines.lock().unwrap_or_else(|e| e.into_inner());
        let list = lines.entry(sprite).or_default();
        if list.len() == KEEP {
            list.pop_front();
        }
        list.push_back(entry.clone());
        if entry.allowed {
            let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
            let list = open.entry(sprite).or_default();
            list.retain(|w| w.strong_count() > 0);
            list.push(Arc::downgrade(entry));
        }
    }

    /// The sprite's decisions, newest first.
    pub fn lines(&self, sprite: i64) -> Vec<EntryView> {
        let lines = self.lines.lock().unwrap_or_else(|e| e.into_inner());
        lines
            .get(&sprite)
            .map(|l| l.iter().rev().map(|e| e.view()).collect())
            .unwrap_or_default()
    }

    /// The sprite's open connections.
    pub fn open(&self, sprite: i64) -> Vec<Arc<Entry>> {
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        let Some(list) = open.get_mut(&sprite) else {
            return Vec::new();
        };
        list.retain(|w| w.strong_count() > 0);
        list.iter()
            .filter_map(Weak::upgrade)
            .filter(|e| e.open.load(Ordering::Relaxed))
            .collect()
    }

    /// Sprites with open connections.
    pub fn sprites_with_open(&self) -> Vec<i64> {
        let open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        open.keys().copied().collect()
    }

    /// Forgets a deleted sprite.
    pub fn forget(&self, sprite: i64) {
        self.lines
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&sprite);
    }
}

/// An allowed connection's stream: counts bytes into its log line, moves them no faster
/// than its sprite's bandwidth, and fails once cut.
pub struct Watched<S> {
    inner: S,
    entry: Arc<Entry>,
    limiter: Arc<Limiter>,
    /// The sprite's byte counter, which the meter reads.
    moved: Arc<AtomicU64>,
    /// Waits for the bucket to refill, per direction (read, write).
    waits: [Option<Pin<Box<tokio::time::Sleep>>>; 2],
    /// Wraps the sprite's end (a connection into it): reads are what the sprite sent.
    inward: bool,
}

impl<S> Watched<S> {
    /// Watches `inner` under `entry`, within `limiter`, counting into `moved`.
    pub fn new(inner: S, entry: Arc<Entry>, limiter: Arc<Limiter>, moved: Arc<AtomicU64>) -> Self {
        Self {
            inner,
            entry,
            limiter,
            moved,
            waits: [None, None],
            inward: false,
        }
    }

    /// As [`Watched::new`], around the sprite's end of a connection into it (its URL,
    /// a tunnel): what is read from it is what the sprite sent.
    pub fn inward(
        inner: S,
        entry: Arc<Entry>,
        limiter: Arc<Limiter>,
        moved: Arc<AtomicU64>,
    ) -> Self {
        let mut watched = Self::new(inner, entry, limiter, moved);
        watched.inward = true;
        watched
    }

    /// The counter of bytes the sprite sent (`true`) or received.
    fn counter(&self, sent_by_sprite: bool) -> &AtomicU64 {
        if sent_by_sprite {
            &self.entry.bytes_out
        } else {
            &self.entry.bytes_in
        }
    }

    /// How many bytes this direction may move now (`Pending` while the bucket refills;
    /// the task is woken when it has).
    fn allowance(&mut self, cx: &mut Context<'_>, slot: usize, want: usize) -> Poll<usize> {
        loop {
            if let Some(wait) = self.waits[slot].as_mut() {
                if wait.as_mut().poll(cx).is_pending() {
                    return Poll::Pending;
                }
                self.waits[slot] = None;
            }
            match self.limiter.take(want.max(1)) {
                Ok(n) => return Poll::Ready(n),
                Err(wait) => self.waits[slot] = Some(Box::pin(tokio::time::sleep(wait))),
            }
        }
    }
}

impl<S> Drop for Watched<S> {
    fn drop(&mut self) {
        self.entry.open.store(false, Ordering::Relaxed);
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Watched<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        if let Some(error) = self.entry.check(cx, 0) {
            return Poll::Ready(Err(error));
        }
        let granted = match self.allowance(cx, 0, buf.remaining()) {
            Poll::Ready(n) => n.min(buf.remaining()),
            Poll::Pending => return Poll::Pending,
        };
        let mut limited = buf.take(granted);
        let polled = Pin::new(&mut self.inner).poll_read(cx, &mut limited);
        let got = limited.filled().len();
        // SAFETY: `limited` wrote `got` initialised bytes into `buf`'s unfilled part.
        unsafe { buf.assume_init(got) };
        buf.advance(got);
        self.limiter.refund(granted - got);
        self.counter(self.inward)
            .fetch_add(got as u64, Ordering::Relaxed);
        self.moved.fetch_add(got as u64, Ordering::Relaxed);
        polled
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Watched<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        if let Some(error) = self.entry.check(cx, 1) {
            return Poll::Ready(Err(error));
        }
        let granted = match self.allowance(cx, 1, buf.len()) {
            Poll::Ready(n) => n.min(buf.len()),
            Poll::Pending => return Poll::Pending,
        };
        let polled = Pin::new(&mut self.inner).poll_write(cx, &buf[..granted]);
        let written = match &polled {
            Poll::Ready(Ok(n)) => *n,
            _ => 0,
        };
        self.limiter.refund(granted - written);
        self.counter(!self.inward)
            .fetch_add(written as u64, Ordering::Relaxed);
        self.moved.fetch_add(written as u64, Ordering::Relaxed);
        polled
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}
