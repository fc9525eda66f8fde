use crate::error::{Result, StoreError};
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use tokio::sync::oneshot;

/// A write that has been handed to the store. Await it (or [`Pending::wait`] outside async code)
/// to learn when it is committed and durable, or why it failed.
#[must_use = "a write is only known to be durable once its Pending resolves"]
pub struct Pending<T>(PendingInner<T>);

enum PendingInner<T> {
    Waiting(oneshot::Receiver<Result<T>>),
    Failed(Option<StoreError>),
}

impl<T> Pending<T> {
    pub(crate) fn new(rx: oneshot::Receiver<Result<T>>) -> Self {
        Pending(PendingInner::Waiting(rx))
    }

    pub fn failed(e: StoreError) -> Self {
        Pending(PendingInner::Failed(Some(e)))
    }

    /// Blocks the current thread until the write is committed. Never call it from async code.
    pub fn wait(self) -> Result<T> {
        match self.0 {
            PendingInner::Waiting(rx) => rx.blocking_recv().unwrap_or(Err(StoreError::Closed)),
            PendingInner::Failed(e) => Err(e.unwrap_or(StoreError::Closed)),
        }
    }
}

impl<T> Future for Pending<T> {
    type Output = Result<T>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        // Pending holds no self-references, so it is Unpin and get_mut is fine.
        match &mut self.get_mut().0 {
            PendingInner::Waiting(rx) => Pin::new(rx)
                .poll(cx)
                .map(|r| r.unwrap_or(Err(StoreError::Closed))),
            PendingInner::Failed(e) => Poll::Ready(Err(e.take().unwrap_or(StoreError::Closed))),
        }
    }
}
