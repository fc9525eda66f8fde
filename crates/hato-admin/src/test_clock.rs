//! The test clock (`[testing] manual_clock`): the process's clock, held still from the real time
//! at start and moved forward only by the operator (`POST /api/v1/testing/clock`), for
//! end-to-end tests of retries, delay notices, expiry and warm-up days. Moving it wakes what
//! waits on time (the delivery and outbound agents), so a test sees the effect at once.

use hato_core::clock::ManualClock;
use hato_core::{Clock, Timestamp};
use std::sync::{Arc, Mutex};

type Waker = Box<dyn Fn() + Send + Sync>;

pub struct TestClock {
    clock: Arc<ManualClock>,
    wakers: Mutex<Vec<Waker>>,
}

impl TestClock {
    pub fn new(clock: Arc<ManualClock>) -> Self {
        TestClock {
            clock,
            wakers: Mutex::new(Vec::new()),
        }
    }

    /// `f` runs after each move (an agent's wake-up).
    pub fn on_advance(&self, f: impl Fn() + Send + Sync + 'static) {
        self.wakers
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(Box::new(f));
    }

    /// Moves the clock `secs` forward and wakes the waiters; the time after.
    pub fn advance(&self, secs: i64) -> Timestamp {
        self.clock.advance_seconds(secs);
        for wake in self
            .wakers
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .iter()
        {
            wake();
        }
        self.clock.now()
    }
}

impl Clock for TestClock {
    fn now(&self) -> Timestamp {
        self.clock.now()
    }
}
