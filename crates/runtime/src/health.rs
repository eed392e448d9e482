//! Health of the components of this node, as `/healthz` shows it.

use crate::component::Placement;
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

/// The state of a component on this node.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    /// Being built or started.
    Starting,
    /// Running.
    Active,
    /// A singleton waiting for its lease, held by another node: healthy.
    Standby,
    /// Failed or panicked; waiting to be started again.
    Restarting,
    /// Running, but it reports trouble it survives (e.g. its store writes fail).
    Degraded,
    /// Stopping on shutdown.
    Stopping,
    /// Ended.
    Stopped,
}

impl State {
    /// Whether a node with a component in this state is ready for traffic.
    pub fn is_ready(self) -> bool {
        matches!(self, State::Active | State::Standby)
    }
}

/// One component's health.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ComponentHealth {
    /// The component.
    pub name: &'static str,
    /// Replicated or singleton.
    pub placement: Placement,
    /// Its state.
    pub state: State,
    /// Why it is restarting or degraded.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Since when it is in this state (Unix ms).
    pub since: i64,
    /// Restarts after panics or errors since the node started.
    pub restarts: u64,
    /// The epoch of the lease this node holds (singletons that are active).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lease_epoch: Option<i64>,
    /// The newest policy revision the component has loaded (components with policies),
    /// so the console can show which version each node runs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub policy_revision: Option<i64>,
    /// What operators should know of a running component that is not a fault of it
    /// (e.g. "no mail server: notifications are not sent"). In the node report, so the
    /// console of every node shows them.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notices: Vec<Notice>,
}

/// Something a running component wants operators to know ([`HealthReporter::notice`]).
#[derive(Clone, Debug, PartialEq, Serialize, serde::Deserialize)]
pub struct Notice {
    /// Stable code, e.g. `no_mail_server`; one notice per code.
    pub code: String,
    /// For people, in Japanese.
    pub ja: String,
    /// For people, in English.
    pub en: String,
    /// Since when (Unix ms).
    pub since: i64,
}

/// The health of every component of this node.
#[derive(Clone, Default)]
pub struct Health {
    inner: Arc<Mutex<BTreeMap<&'static str, ComponentHealth>>>,
}

impl Health {
    fn lock(&self) -> MutexGuard<'_, BTreeMap<&'static str, ComponentHealth>> {
        // A panic while the lock was held left plain data behind: keep using it.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Returns the reporter of one component, registering it as starting.
    pub fn reporter(&self, name: &'static str, placement: Placement) -> HealthReporter {
        self.lock().insert(
            name,
            ComponentHealth {
                name,
                placement,
                state: State::Starting,
                reason: None,
                since: mamori_core::time::now_ms(),
                restarts: 0,
                lease_epoch: None,
                policy_revision: None,
                notices: Vec::new(),
            },
        );
        HealthReporter { health: self.clone(), name }
    }

    /// Returns the reporter of a component already registered.
    pub(crate) fn reporter_of(&self, name: &'static str) -> HealthReporter {
        HealthReporter { health: self.clone(), name }
    }

    /// Returns every component's health, by name.
    pub fn snapshot(&self) -> Vec<ComponentHealth> {
        self.lock().values().cloned().collect()
    }

    /// Whether every component is ready (a node without components is).
    pub fn ready(&self) -> bool {
        self.lock().values().all(|c| c.state.is_ready())
    }
}

/// Where one component's state is set.
#[derive(Clone)]
pub struct HealthReporter {
    health: Health,
    name: &'static str,
}

impl HealthReporter {
    fn update(&self, f: impl FnOnce(&mut ComponentHealth)) {
        if let Some(c) = self.health.lock().get_mut(self.name) {
            let before = (c.state, c.reason.clone());
            f(c);
            if (c.state, c.reason.clone()) != before {
                c.since = mamori_core::time::now_ms();
            }
        }
    }

    /// Sets the state (the runtime does; components use [`HealthReporter::degraded`]).
    pub(crate) fn set(&self, state: State, reason: Option<String>) {
        self.update(|c| {
            c.state = state;
            c.reason = reason;
            if state != State::Active && state != State::Degraded {
                c.lease_epoch = None;
                // A component that does not run has nothing to say; it says it again
                // when it runs.
                c.notices.clear();
            }
        });
    }

    /// Sets the state, for tests of code that reports through a reporter.
    #[doc(hidden)]
    pub fn set_for_tests(&self, state: State) {
        self.set(state, None);
    }

    pub(crate) fn set_lease(&self, epoch: Option<i64>) {
        self.update(|c| c.lease_epoch = epoch);
    }

    pub(crate) fn policy_loaded(&self, revision: i64) {
        self.update(|c| c.policy_revision = Some(revision));
    }

    pub(crate) fn restarted(&self) {
        self.update(|c| c.restarts += 1);
    }

    /// Tells the node the component runs but has trouble (shown in `/healthz`, which
    /// answers 503 meanwhile). Only an active component can be degraded.
    pub fn degraded(&self, reason: impl Into<String>) {
        let reason = reason.into();
        self.update(|c| {
            if matches!(c.state, State::Active | State::Degraded) {
                c.state = State::Degraded;
                c.reason = Some(reason);
            }
        });
    }

    /// Raises (or rewords) the notice `code`: shown in the console of every node while
    /// the component runs, until [`HealthReporter::clear_notice`].
    pub fn notice(&self, code: &str, ja: impl Into<String>, en: impl Into<String>) {
        let (ja, en) = (ja.into(), en.into());
        self.update(|c| match c.notices.iter_mut().find(|n| n.code == code) {
            Some(n) => {
                n.ja = ja;
                n.en = en;
            }
            None => c.notices.push(Notice { code: code.to_string(), ja, en, since: mamori_core::time::now_ms() }),
        });
    }

    /// Takes the notice `code` back.
    pub fn clear_notice(&self, code: &str) {
        self.update(|c| c.notices.retain(|n| n.code != code));
    }

    /// Tells the node the trouble is over.
    pub fn recovered(&self) {
        self.update(|c| {
            if c.state == State::Degraded {
                c.state = State::Active;
                c.reason = None;
            }
        });
    }
}
