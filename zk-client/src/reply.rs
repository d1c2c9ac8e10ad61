//! Waiting for one reply: [`ReplyFuture`] resolves when the driver hands over the session's
//! [`zk_core::Event::Reply`], and [`OpFuture`] turns that reply into an operation's typed result.
//!
//! Dropping a future before its reply arrives abandons the wait, not the request: the request was
//! already sent and will still be applied. A watch such a request armed is removed at once, since
//! nobody could ever receive it.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use zk_core::proto::Response;
use zk_core::{Error, RequestId, WatcherId};

use crate::shared::{ReplySlot, Shared};

/// A raw reply: the response and the watcher it armed.
pub(crate) type Reply = (Result<Response, Error>, Option<WatcherId>);

/// Resolves with the reply to one submitted request.
pub(crate) struct ReplyFuture {
    shared: Arc<Shared>,
    state: ReplyState,
}

enum ReplyState {
    Waiting(RequestId),
    Failed(Error),
    Done,
}

impl ReplyFuture {
    pub(crate) fn submit(shared: &Arc<Shared>, result: Result<RequestId, Error>) -> Self {
        ReplyFuture {
            shared: shared.clone(),
            state: match result {
                Ok(id) => ReplyState::Waiting(id),
                Err(e) => ReplyState::Failed(e),
            },
        }
    }
}

impl Future for ReplyFuture {
    type Output = Reply;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Reply> {
        let this = self.get_mut();
        match std::mem::replace(&mut this.state, ReplyState::Done) {
            ReplyState::Failed(e) => Poll::Ready((Err(e), None)),
            ReplyState::Done => Poll::Ready((Err(Error::Closed), None)),
            ReplyState::Waiting(id) => {
                let mut g = this.shared.lock();
                let done = g.driver_done;
                match g.replies.get_mut(&id) {
                    Some(ReplySlot::Done(..)) => match g.replies.remove(&id) {
                        Some(ReplySlot::Done(result, watcher)) => Poll::Ready((result, watcher)),
                        _ => Poll::Ready((Err(Error::Closed), None)),
                    },
                    _ if done => Poll::Ready((Err(Error::Closed), None)),
                    Some(ReplySlot::Waiting(w)) => {
                        // Update the waker in place: no second hash, and no clone when the same
                        // task polls again.
                        if !w.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
                            *w = Some(cx.waker().clone());
                        }
                        drop(g);
                        this.state = ReplyState::Waiting(id);
                        Poll::Pending
                    }
                    None => {
                        g.replies
                            .insert(id, ReplySlot::Waiting(Some(cx.waker().clone())));
                        drop(g);
                        this.state = ReplyState::Waiting(id);
                        Poll::Pending
                    }
                }
            }
        }
    }
}

impl Drop for ReplyFuture {
    fn drop(&mut self) {
        if let ReplyState::Waiting(id) = self.state {
            let now = self.shared.now();
            let mut g = self.shared.lock();
            if let Some(ReplySlot::Done(_, Some(w))) = g.replies.remove(&id) {
                g.watchers.remove(&w);
                g.session.remove_watcher(now, w);
                g.wake_driver();
            }
        }
    }
}

/// Maps a raw reply to an operation's result.
pub(crate) type MapReply<T> = fn(&Arc<Shared>, Reply) -> Result<T, Error>;

/// The future of one operation: a reply and the mapping to its typed result.
#[must_use = "futures do nothing unless awaited; the request is already sent, though"]
pub struct OpFuture<T> {
    reply: ReplyFuture,
    map: Mapper<T>,
}

/// A mapping that needs data from the call site (boxed once per call).
type ContextMap<T> = Box<dyn FnOnce(Reply) -> Result<T, Error> + Send>;

enum Mapper<T> {
    Plain(MapReply<T>),
    Context(Option<ContextMap<T>>),
}

impl<T> OpFuture<T> {
    pub(crate) fn new(reply: ReplyFuture, map: MapReply<T>) -> Self {
        OpFuture {
            reply,
            map: Mapper::Plain(map),
        }
    }

    pub(crate) fn with_context<C: Send + 'static>(
        reply: ReplyFuture,
        context: C,
        map: fn(C, Reply) -> Result<T, Error>,
    ) -> Self
    where
        T: 'static,
    {
        OpFuture {
            reply,
            map: Mapper::Context(Some(Box::new(move |r| map(context, r)))),
        }
    }
}

impl<T> Future for OpFuture<T> {
    type Output = Result<T, Error>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let reply = match Pin::new(&mut self.reply).poll(cx) {
            Poll::Ready(reply) => reply,
            Poll::Pending => return Poll::Pending,
        };
        let shared = self.reply.shared.clone();
        Poll::Ready(match &mut self.map {
            Mapper::Plain(map) => map(&shared, reply),
            Mapper::Context(f) => match f.take() {
                Some(f) => f(reply),
                None => Err(Error::Closed),
            },
        })
    }
}

impl<T> Unpin for OpFuture<T> {}

/// The error for a reply whose body does not fit the operation (a server bug or a mismatch).
pub(crate) fn unexpected(resp: &Response) -> Error {
    Error::Protocol(format!("unexpected reply body {resp:?}"))
}
