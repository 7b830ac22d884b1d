//! Whether this instance should take requests: its database answers and takes writes.

use super::{App, Error, Result};
use crate::domain::refusal::Refusal;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::time::{Duration, Instant};

/// How long after a write failed for want of space the instance reports not ready. A database
/// can take a small write (the probe's) while refusing the writes that need new space, so the
/// probe alone would report ready on a full disk; after this long without a failure the instance
/// is tried again (and is ready for good once space has been freed).
pub const NOT_READY_AFTER_FULL: Duration = Duration::from_secs(10);

/// What this process saw of its database's health.
#[derive(Debug)]
pub struct Health {
    started: Instant,
    /// Milliseconds since `started` of the last write refused for want of space; negative for
    /// never.
    full_at: AtomicI64,
    /// What the last readiness check answered, to log changes only.
    ready: AtomicBool,
}

impl Default for Health {
    fn default() -> Self {
        Self {
            started: Instant::now(),
            full_at: AtomicI64::new(-1),
            ready: AtomicBool::new(true),
        }
    }
}

impl Health {
    fn millis(&self) -> i64 {
        i64::try_from(self.started.elapsed().as_millis()).unwrap_or(i64::MAX)
    }

    /// A write was just refused for want of space.
    pub fn note_full(&self) {
        self.full_at.store(self.millis(), Ordering::Relaxed);
    }

    /// Records what a readiness check answered; whether that is a change.
    pub fn note_ready(&self, ready: bool) -> bool {
        self.ready.swap(ready, Ordering::Relaxed) != ready
    }

    /// Whether a write was refused for want of space within [`NOT_READY_AFTER_FULL`].
    pub fn recently_full(&self) -> bool {
        let at = self.full_at.load(Ordering::Relaxed);
        let window = i64::try_from(NOT_READY_AFTER_FULL.as_millis()).unwrap_or(i64::MAX);
        at >= 0 && self.millis() - at < window
    }
}

/// Ready when the database answers, a small write commits, and no write has lately been refused
/// for want of space.
pub async fn ready(app: &App) -> Result<()> {
    app.store.ping().await?;
    app.store.probe_write(app.clock.now()).await?;
    if app.health.recently_full() {
        return Err(Error::Refused(Refusal::StorageFull));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refused_write_makes_the_instance_not_ready_for_a_while() {
        let health = Health::default();
        assert!(!health.recently_full());
        health.note_full();
        assert!(health.recently_full());
        // As if the failure had been longer ago than the window.
        health.full_at.store(
            health.millis() - NOT_READY_AFTER_FULL.as_millis() as i64 - 1,
            Ordering::Relaxed,
        );
        assert!(!health.recently_full());
    }
}
