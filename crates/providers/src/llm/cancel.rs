//! The cancel signal an LLM call listens to.
//!
//! Built on `tokio::sync::watch<bool>`: the owner keeps a [`CancelHandle`], the call gets a
//! [`CancelToken`] (cheap to clone). Setting the value to `true` cancels every call holding a token;
//! dropping the handle without cancelling does *not* cancel, so a forgotten handle never aborts work.

use tokio::sync::watch;

/// The owner side: cancels every call that holds one of its tokens.
#[derive(Debug)]
pub struct CancelHandle(watch::Sender<bool>);

impl CancelHandle {
    /// Cancels the calls; idempotent.
    pub fn cancel(&self) {
        self.0.send_replace(true);
    }

    /// A further token tied to this handle.
    pub fn token(&self) -> CancelToken {
        CancelToken(Some(self.0.subscribe()))
    }
}

/// The call side: tells whether, and when, the caller gave up.
#[derive(Debug, Clone, Default)]
pub struct CancelToken(Option<watch::Receiver<bool>>);

impl CancelToken {
    /// A linked handle and token.
    pub fn pair() -> (CancelHandle, CancelToken) {
        let (tx, rx) = watch::channel(false);
        (CancelHandle(tx), CancelToken(Some(rx)))
    }

    /// A token that is never cancelled.
    pub fn never() -> Self {
        CancelToken(None)
    }

    /// Whether cancellation was requested.
    pub fn is_cancelled(&self) -> bool {
        self.0.as_ref().is_some_and(|rx| *rx.borrow())
    }

    /// Completes once cancellation is requested; pends forever if it never is.
    pub async fn cancelled(&self) {
        if let Some(rx) = &self.0 {
            let mut rx = rx.clone();
            if rx.wait_for(|c| *c).await.is_ok() {
                return;
            }
        }
        std::future::pending::<()>().await
    }
}

impl From<watch::Receiver<bool>> for CancelToken {
    fn from(rx: watch::Receiver<bool>) -> Self {
        CancelToken(Some(rx))
    }
}
