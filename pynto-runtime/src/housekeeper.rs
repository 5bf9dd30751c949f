//! The housekeeper: one process-wide thread for chores no caller is around to do.
//!
//! It has releases queued on idle connections written, sees that no connection stays unread
//! for longer than a moment (starting a read loop where needed), checks each session's
//! liveness (`liveness.rs`) and enforces handshake deadlines. One thread serves every session
//! of the process. It ticks every millisecond while connections are busy (readers come and go)
//! and every quarter second when all is quiet.
//!
//! **It never writes to a peer and never waits for a connection's lock**: whatever might block
//! on one peer (a write, a Goodbye, a close) goes to a pool thread as a chore, so a peer that
//! stops reading stalls no one but the threads serving it.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{OnceLock, Weak};
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};

use crate::imports::ReleaseSink;
use crate::pool;

/// How often sessions are checked when all is quiet.
const SLOW_TICK: Duration = Duration::from_millis(250);
/// How often sessions are checked while readers come and go.
const FAST_TICK: Duration = Duration::from_millis(1);
/// How long after the last vacancy the fast ticks go on.
const FAST_SPAN_MS: u64 = 100;
/// How long a connection may go unread before the housekeeper finds it a reader.
pub(crate) const VACANCY_GRACE_MS: u64 = 1;

/// When (ms after `epoch()`) a reader was last let go, anywhere in the process.
static LAST_VACANCY: AtomicU64 = AtomicU64::new(0);
/// True while the housekeeper ticks slowly (a vacancy must wake it).
static SLOW: AtomicBool = AtomicBool::new(true);

fn epoch() -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

fn now_ms() -> u64 {
    epoch().elapsed().as_millis() as u64
}

/// A reader was let go: tick fast for a while, so the connection is read again soon.
pub(crate) fn vacancy() {
    activity();
}

/// Something needs the housekeeper soon: tick fast for a while (waking it if it ticks slowly).
fn activity() {
    LAST_VACANCY.store(now_ms(), Ordering::SeqCst);
    if SLOW.load(Ordering::SeqCst) && SLOW.swap(false, Ordering::SeqCst) {
        housekeeper().cond.notify_one();
    }
}

/// A session the housekeeper checks for liveness.
pub(crate) trait Maintained: Send + Sync {
    /// Ping a silent peer, or close the session if the peer stayed silent too long.
    fn maintain(self: std::sync::Arc<Self>);
}

/// Shuts a transport in both directions without blocking (see `session::shutter`).
pub(crate) type Shutter = std::sync::Arc<dyn Fn() + Send + Sync>;

#[derive(Default)]
struct State {
    flush: Vec<Weak<dyn ReleaseSink>>,
    /// Sessions not parked in the poller (`reader::park`), by address: checked on every tick.
    awake: HashMap<usize, Weak<dyn Maintained>>,
    /// Parked sessions with calls waiting on them: checked on slow ticks (liveness). A parked
    /// session with no call waiting has nothing to check (it is read when bytes come, and a
    /// call made on it wakes it), so it costs the housekeeper nothing.
    dozing: HashMap<usize, Weak<dyn Maintained>>,
    deadlines: Vec<(u64, Instant, Shutter)>,
    started: bool,
    /// When the housekeeper wakes next, while it waits (a later deadline need not wake it).
    wakes_at: Option<Instant>,
}

struct Housekeeper {
    state: Mutex<State>,
    cond: Condvar,
}

fn housekeeper() -> &'static Housekeeper {
    static KEEPER: OnceLock<Housekeeper> = OnceLock::new();
    let keeper = KEEPER.get_or_init(|| Housekeeper {
        state: Mutex::new(State::default()),
        cond: Condvar::new(),
    });
    let mut state = keeper.state.lock();
    if !state.started {
        state.started = true;
        std::thread::Builder::new()
            .name("pynto-housekeeper".into())
            .spawn(run)
            .expect("start the pynto housekeeper thread");
    }
    drop(state);
    keeper
}

/// Write `sink`'s queued releases soon.
///
/// Not at once: within a tick (a millisecond while the process is busy), so releases made in
/// quick succession go out as one message, and usually with the next call, at no cost.
pub(crate) fn flush_soon(sink: Weak<dyn ReleaseSink>) {
    housekeeper().state.lock().flush.push(sink);
    activity();
}

/// Check `session` for liveness from now on, until it is gone.
pub(crate) fn watch(session: Weak<dyn Maintained>) {
    let keeper = housekeeper();
    keeper
        .state
        .lock()
        .awake
        .insert(key(&session), session.clone());
    keeper.cond.notify_one();
}

fn key(session: &Weak<dyn Maintained>) -> usize {
    session.as_ptr() as *const () as usize
}

/// `session` parked in the poller: check it on slow ticks while `calls_wait`, else not at all.
pub(crate) fn asleep(session: &Weak<dyn Maintained>, calls_wait: bool) {
    let mut state = housekeeper().state.lock();
    state.awake.remove(&key(session));
    if calls_wait {
        state.dozing.insert(key(session), session.clone());
    } else {
        state.dozing.remove(&key(session));
    }
}

/// A call began on parked `session`: check it on slow ticks, if it is still parked (looked at
/// under the lock that `awake` takes, so a wake-up in between is never undone).
pub(crate) fn doze(session: &Weak<dyn Maintained>, parked: &AtomicBool) {
    let mut state = housekeeper().state.lock();
    if parked.load(Ordering::SeqCst) {
        state.dozing.insert(key(session), session.clone());
    }
}

/// `session` is read again: check it on every tick.
pub(crate) fn awake(session: &Weak<dyn Maintained>) {
    let mut state = housekeeper().state.lock();
    state.dozing.remove(&key(session));
    state.awake.insert(key(session), session.clone());
}

/// Shuts a transport if it is still armed at its deadline; disarmed on drop.
pub(crate) struct Deadline {
    id: u64,
}

impl Deadline {
    /// Shut the transport at `at` unless this guard is dropped first.
    pub(crate) fn arm(at: Instant, shutter: Shutter) -> Deadline {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        let id = NEXT.fetch_add(1, Ordering::Relaxed);
        let keeper = housekeeper();
        let mut state = keeper.state.lock();
        state.deadlines.push((id, at, shutter));
        // Waking the housekeeper costs a handshake about 25 us; it need not wake for a deadline
        // after its next tick.
        if state.wakes_at.is_none_or(|wakes| at < wakes) {
            keeper.cond.notify_one();
        }
        Deadline { id }
    }
}

impl Drop for Deadline {
    fn drop(&mut self) {
        housekeeper()
            .state
            .lock()
            .deadlines
            .retain(|(id, _, _)| *id != self.id);
    }
}

fn run() {
    let keeper = housekeeper();
    let mut next_tick = Instant::now() + SLOW_TICK;
    let mut next_sweep = next_tick;
    let mut state = keeper.state.lock();
    loop {
        // Fast while readers came and went lately; the SeqCst pair with `vacancy` makes sure a
        // vacancy either sees SLOW set (and wakes us) or is seen here.
        let fast = if now_ms().saturating_sub(LAST_VACANCY.load(Ordering::SeqCst)) < FAST_SPAN_MS {
            SLOW.store(false, Ordering::SeqCst);
            true
        } else {
            SLOW.store(true, Ordering::SeqCst);
            now_ms().saturating_sub(LAST_VACANCY.load(Ordering::SeqCst)) < FAST_SPAN_MS
        };
        if fast {
            next_tick = next_tick.min(Instant::now() + FAST_TICK);
        }
        let mut wake_at = next_tick;
        for (_, at, _) in &state.deadlines {
            wake_at = wake_at.min(*at);
        }
        state.wakes_at = Some(wake_at);
        keeper.cond.wait_until(&mut state, wake_at);
        state.wakes_at = None;
        let flush = std::mem::take(&mut state.flush);
        let now = Instant::now();
        let mut expired = Vec::new();
        state.deadlines.retain(|(_, at, shutter)| {
            if *at <= now {
                expired.push(shutter.clone());
                false
            } else {
                true
            }
        });
        let sessions = if now >= next_tick || !SLOW.load(Ordering::SeqCst) {
            next_tick = now
                + if SLOW.load(Ordering::SeqCst) {
                    SLOW_TICK
                } else {
                    FAST_TICK
                };
            state.awake.retain(|_, s| s.strong_count() > 0);
            let mut sessions: Vec<_> = state.awake.values().cloned().collect();
            if now >= next_sweep {
                // Parked sessions with calls waiting, a few times a second.
                next_sweep = now + SLOW_TICK;
                state.dozing.retain(|_, s| s.strong_count() > 0);
                sessions.extend(state.dozing.values().cloned());
            }
            sessions
        } else {
            Vec::new()
        };
        drop(state);
        for sink in flush {
            if sink.strong_count() > 0 {
                pool::spawn_chore(Box::new(move || {
                    if let Some(sink) = sink.upgrade() {
                        sink.flush();
                    }
                }));
            }
        }
        for shut in expired {
            shut();
        }
        for session in sessions {
            if let Some(session) = session.upgrade() {
                session.maintain();
            }
        }
        state = keeper.state.lock();
    }
}
