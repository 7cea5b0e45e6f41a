//! Group commit for the agents' writes to their commands (hand-outs, acknowledgements,
//! completions): a fleet's hosts report together, and each report as a transaction of its own
//! would queue every host, and the driver behind them, for the single writer one statement at a
//! time. Instead a write waits in a queue, and its caller for a turn; the caller whose turn it
//! is takes every write queued by then, makes them all in one transaction and answers them
//! before the turn passes on, so the next callers in line find their answers ready. Nothing
//! waits for a batch to fill: an idle store writes at once, a busy one in batches as large as
//! what arrived during the last one. Only the caller whose turn it is waits for the writer, so
//! the driver's own writes wait behind one batch at most.

use std::sync::Mutex;

use tokio::sync::oneshot;

use crate::{StoreError, StoreResult};

/// The writes waiting for the writer, each with where its answer goes.
pub(crate) struct GroupCommit<W, R> {
    pending: Mutex<Pending<W, R>>,
    /// Held while a batch is taken, made and answered.
    turn: tokio::sync::Mutex<()>,
}

struct Pending<W, R> {
    next_id: u64,
    entries: Vec<Queued<W, R>>,
}

/// A write taken from the queue, to be made and answered.
pub(crate) struct Queued<W, R> {
    id: u64,
    pub(crate) write: W,
    answer: oneshot::Sender<StoreResult<R>>,
}

impl<W, R> Queued<W, R> {
    pub(crate) fn answer(self, result: StoreResult<R>) {
        // The caller may have gone (its request was cancelled); nobody else wants the answer.
        let _ = self.answer.send(result);
    }
}

/// A caller's place in the queue. Dropped before its write was taken (the caller's request was
/// cancelled), it takes the write back out: a write nobody waits for is not made.
pub(crate) struct Ticket<'a, W, R> {
    queue: &'a GroupCommit<W, R>,
    id: u64,
    answer: oneshot::Receiver<StoreResult<R>>,
    answered: bool,
}

impl<W, R> Default for GroupCommit<W, R> {
    fn default() -> Self {
        GroupCommit {
            pending: Mutex::new(Pending { next_id: 0, entries: Vec::new() }),
            turn: tokio::sync::Mutex::new(()),
        }
    }
}

impl<W, R> GroupCommit<W, R> {
    fn pending(&self) -> std::sync::MutexGuard<'_, Pending<W, R>> {
        self.pending.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Queues a write; the ticket's [`Ticket::answered`] waits for its result.
    pub(crate) fn enqueue(&self, write: W) -> Ticket<'_, W, R> {
        let (sender, receiver) = oneshot::channel();
        let mut pending = self.pending();
        let id = pending.next_id;
        pending.next_id += 1;
        pending.entries.push(Queued { id, write, answer: sender });
        Ticket { queue: self, id, answer: receiver, answered: false }
    }

    /// The turn to take and make a batch; callers wait for it in the order they came. Whoever
    /// holds it answers what it took before letting go.
    pub(crate) async fn turn(&self) -> tokio::sync::MutexGuard<'_, ()> {
        self.turn.lock().await
    }

    /// Every write queued now, in the order they came, for the caller whose turn it is.
    pub(crate) fn take(&self) -> Vec<Queued<W, R>> {
        std::mem::take(&mut self.pending().entries)
    }
}

impl<W, R> Ticket<'_, W, R> {
    /// The write's result, once whoever took it has made it. A taker that was cancelled before
    /// answering dropped its transaction, so nothing was written: the caller may try again.
    pub(crate) async fn answered(&mut self) -> StoreResult<R> {
        let result = (&mut self.answer).await;
        self.answered = true;
        result.unwrap_or_else(|_| Err(StoreError::Unavailable("the write was interrupted; nothing was written".into())))
    }
}

impl<W, R> Drop for Ticket<'_, W, R> {
    fn drop(&mut self) {
        if !self.answered {
            self.queue.pending().entries.retain(|entry| entry.id != self.id);
        }
    }
}

/// The same failure for every write of a batch (the transaction they shared was not committed).
pub(crate) fn shared_failure(error: &StoreError) -> StoreError {
    match error {
        StoreError::Unavailable(cause) => StoreError::Unavailable(cause.to_string().into()),
        StoreError::Full(message) => StoreError::Full(message.clone()),
        other => StoreError::backend(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_taker_answers_every_write_queued_before_it_took_them() {
        let queue: GroupCommit<u32, u32> = GroupCommit::default();
        let mut first = queue.enqueue(1);
        let mut second = queue.enqueue(2);
        let batch = queue.take();
        assert_eq!(batch.iter().map(|q| q.write).collect::<Vec<_>>(), [1, 2]);
        let mut third = queue.enqueue(3);
        for queued in batch {
            let doubled = queued.write * 2;
            queued.answer(Ok(doubled));
        }
        assert_eq!(first.answered().await.unwrap(), 2);
        assert_eq!(second.answered().await.unwrap(), 4);
        assert_eq!(queue.take().len(), 1, "a write queued after the take waits for the next one");
        assert!(matches!(third.answered().await, Err(StoreError::Unavailable(_))), "a dropped batch is no answer");
    }

    #[tokio::test]
    async fn a_cancelled_caller_takes_its_write_back() {
        let queue: GroupCommit<u32, u32> = GroupCommit::default();
        let kept = queue.enqueue(1);
        drop(queue.enqueue(2));
        assert_eq!(queue.take().iter().map(|q| q.write).collect::<Vec<_>>(), [1]);
        drop(kept);
    }
}
