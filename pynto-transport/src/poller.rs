//! The process's poller: one epoll instance and one thread, so that an idle connection waits
//! for its next byte without a thread of its own.
//!
//! A reader that has nothing to read *parks*: it arms its [`Registration`] with a callback, and
//! the poller thread runs that callback once, when the descriptor becomes readable (or hangs
//! up). Arming is one-shot (`EPOLLONESHOT`) and level-triggered, so bytes already waiting when
//! it is armed fire it at once and no wake-up is lost between a reader's last read and its
//! arming; after firing, the descriptor stays registered but silent until armed again.
//!
//! Callbacks run on the poller thread, one after another: they must be quick and must not
//! block (the runtime's hands the connection to a pool thread). A registration is removed
//! from the epoll set, and its callback dropped unrun, when it is dropped; it must be dropped
//! while its descriptor is still open (the socket reader declares it before the socket).

use std::collections::HashMap;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};

/// What the poller runs when a parked descriptor becomes readable.
pub type Wake = Box<dyn FnOnce() + Send>;

/// Events one `epoll_wait` takes at most.
const BATCH: usize = 256;

struct Poller {
    epoll: OwnedFd,
    /// The armed callbacks, by registration token.
    armed: Mutex<HashMap<u64, Wake>>,
}

/// The process's poller, started on first use; `None` if epoll or its thread could not be had
/// (then nothing parks and readers keep their threads, as before).
fn poller() -> Option<&'static Poller> {
    static POLLER: OnceLock<Option<Poller>> = OnceLock::new();
    POLLER
        .get_or_init(|| {
            // SAFETY: epoll_create1 returns a new descriptor or -1.
            let fd = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
            if fd < 0 {
                return None;
            }
            // SAFETY: `fd` is a fresh descriptor nobody else owns.
            let epoll = unsafe { OwnedFd::from_raw_fd(fd) };
            let raw = epoll.as_raw_fd();
            std::thread::Builder::new()
                .name("pynto-poller".into())
                .stack_size(256 << 10)
                .spawn(move || run(raw))
                .ok()?;
            Some(Poller {
                epoll,
                armed: Mutex::new(HashMap::new()),
            })
        })
        .as_ref()
}

fn run(epoll: RawFd) {
    // Waits for `poller()`'s first call, which started this thread, to finish.
    let Some(poller) = poller() else { return };
    let mut events = vec![libc::epoll_event { events: 0, u64: 0 }; BATCH];
    loop {
        // SAFETY: `events` holds BATCH valid entries for the kernel to fill.
        let n = unsafe { libc::epoll_wait(epoll, events.as_mut_ptr(), BATCH as i32, -1) };
        if n < 0 {
            // EINTR; nothing else is expected of a valid epoll descriptor.
            continue;
        }
        let fired: Vec<Wake> = {
            let mut armed = lock(&poller.armed);
            events[..n as usize]
                .iter()
                .filter_map(|e| armed.remove(&{ e.u64 }))
                .collect()
        };
        for wake in fired {
            wake();
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// One descriptor's place in the process's poller. Dropping it removes the descriptor from the
/// epoll set and drops an armed callback unrun.
#[derive(Debug)]
pub struct Registration {
    fd: RawFd,
    token: u64,
    /// True once the descriptor is in the epoll set.
    added: bool,
}

impl Registration {
    /// A registration for `fd`, not yet armed. `fd` must stay open until this is dropped.
    pub fn new(fd: RawFd) -> Registration {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        Registration {
            fd,
            token: NEXT.fetch_add(1, Ordering::Relaxed),
            added: false,
        }
    }

    /// Run `wake` once on the poller thread when the descriptor is readable (now, or when it
    /// becomes so), or hangs up. Replaces a callback armed before and not yet run. `Err(wake)`
    /// if the poller is not available.
    pub fn arm(&mut self, wake: Wake) -> Result<(), Wake> {
        let Some(poller) = poller() else {
            return Err(wake);
        };
        // Stored before arming, so an event at once finds it.
        let replaced = lock(&poller.armed).insert(self.token, wake);
        drop(replaced);
        let mut event = libc::epoll_event {
            events: (libc::EPOLLIN | libc::EPOLLRDHUP | libc::EPOLLONESHOT) as u32,
            u64: self.token,
        };
        let op = if self.added {
            libc::EPOLL_CTL_MOD
        } else {
            libc::EPOLL_CTL_ADD
        };
        // SAFETY: a valid epoll descriptor, an open `fd`, and a live event for the call.
        let rc = unsafe { libc::epoll_ctl(poller.epoll.as_raw_fd(), op, self.fd, &mut event) };
        if rc == 0 {
            self.added = true;
            return Ok(());
        }
        let taken = lock(&poller.armed).remove(&self.token);
        // An event raced in and took the callback: it ran or runs, which is what arming meant.
        taken.map_or(Ok(()), Err)
    }

    /// Drop an armed callback unrun (the descriptor stays registered, silent).
    pub fn disarm(&mut self) {
        if let Some(poller) = poller() {
            let taken = lock(&poller.armed).remove(&self.token);
            drop(taken);
        }
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        let Some(poller) = poller() else { return };
        if self.added {
            let mut unused = libc::epoll_event { events: 0, u64: 0 };
            // SAFETY: a valid epoll descriptor and `fd`, still open (see `new`).
            unsafe {
                libc::epoll_ctl(
                    poller.epoll.as_raw_fd(),
                    libc::EPOLL_CTL_DEL,
                    self.fd,
                    &mut unused,
                )
            };
        }
        let taken = lock(&poller.armed).remove(&self.token);
        drop(taken);
    }
}

/// True if the poller runs (starting it now if need be): one epoll descriptor and one thread
/// for the whole process, from the first connection that may park.
pub fn available() -> bool {
    poller().is_some()
}

/// Callbacks armed and not yet run, process-wide (for tests and stats).
pub fn armed() -> usize {
    poller().map_or(0, |p| lock(&p.armed).len())
}
