//! Session configuration: one typed struct with documented defaults.

use std::time::Duration;

use pynto_proto::Limits;

/// How a session behaves. Bindings mirror these as keyword arguments.
#[derive(Clone, Debug)]
pub struct Config {
    /// What this side accepts from the peer; announced in Hello.
    pub limits: Limits,
    /// On the accepting side: the shared secret the peer must present, if any.
    /// On the connecting side: the secret to present.
    pub token: Option<String>,
    /// Timeout of each blocking call. `None` (the default) waits as long as the peer is alive:
    /// long calls are never cut short, dead peers are found by liveness checks.
    pub call_timeout: Option<Duration>,
    /// How long the whole Hello exchange may take (a TLS handshake before it counts too, where
    /// the binding runs one).
    pub handshake_timeout: Duration,
    /// How long the peer may be silent (no bytes either way) while calls wait before this side
    /// pings it.
    pub liveness_interval: Duration,
    /// How much longer the peer may stay silent before it is declared gone and every waiting
    /// call fails with `ConnectionClosed`. The same window bounds a frame that stalls or
    /// trickles in (see `MIN_FRAME_RATE`).
    pub liveness_timeout: Duration,
    /// How long one write may wait for the peer to take any bytes; past it the connection is
    /// dropped (only that one). `None` waits for ever.
    pub write_timeout: Option<Duration>,
    /// The name of this side's root service, sent in Hello for diagnostics.
    pub service_name: String,
    /// How long a parked caller sleeps between checks of its interrupt hook.
    pub poll_interval: Duration,
    /// Hold the peer's requests (except callbacks of this side's own waiting calls) until
    /// [`crate::Session::start_serving`], so a binding can finish setting up its side (a
    /// service's `on_connect`) before the first request runs. Replies flow meanwhile.
    pub hold_requests: bool,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            limits: Limits::default(),
            token: None,
            call_timeout: None,
            handshake_timeout: Duration::from_secs(10),
            // A peer paused in a debugger for 20 s, or a slow link, stays connected; a peer
            // whose host vanished fails waiting calls within 35 s.
            liveness_interval: Duration::from_secs(5),
            liveness_timeout: Duration::from_secs(30),
            write_timeout: Some(Duration::from_secs(30)),
            service_name: String::new(),
            poll_interval: Duration::from_millis(100),
            hold_requests: false,
        }
    }
}
