//! The window of W2 and W3, shared by every async column: at most `window` requests issued and
//! not yet completed, the next issued as soon as one completes.
//!
//! Issuing means creating the operation's future and polling it once, so a client whose futures
//! only send when first polled still has the whole window on the wire. Completions are then
//! awaited in issue order: ZooKeeper answers one session's requests in order, so the oldest
//! request is always the next to complete, and awaiting it is the same as awaiting whichever
//! completes first, without the bookkeeping of `FuturesUnordered` in the measured loop.

use std::collections::VecDeque;
use std::future::{poll_fn, Future};
use std::pin::Pin;
use std::task::Poll;

use crate::BenchResult;

enum Slot<F: Future> {
    Waiting(F),
    Done(F::Output),
}

/// Issues `n` operations (`issue(i)` for i in 0..n) with at most `window` in flight, handing
/// each result to `done(i, result)` in order. Stops at the first error.
pub async fn windowed<F, T, E>(
    n: usize,
    window: usize,
    mut issue: impl FnMut(usize) -> F,
    mut done: impl FnMut(usize, T) -> BenchResult<()>,
) -> BenchResult<()>
where
    F: Future<Output = Result<T, E>> + Unpin,
    E: std::fmt::Debug,
{
    let mut queue: VecDeque<Slot<F>> = VecDeque::with_capacity(window);
    let mut next = 0;
    let mut completed = 0;
    while completed < n {
        while next < n && queue.len() < window {
            let mut fut = issue(next);
            next += 1;
            let first = poll_fn(|cx| Poll::Ready(Pin::new(&mut fut).poll(cx))).await;
            queue.push_back(match first {
                Poll::Ready(out) => Slot::Done(out),
                Poll::Pending => Slot::Waiting(fut),
            });
        }
        let out = match queue.pop_front() {
            Some(Slot::Done(out)) => out,
            Some(Slot::Waiting(fut)) => fut.await,
            None => break,
        };
        let value = out.map_err(|e| crate::fail(format!("operation {completed}: {e:?}")))?;
        done(completed, value)?;
        completed += 1;
    }
    Ok(())
}
