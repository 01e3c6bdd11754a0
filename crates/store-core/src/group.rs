//! Group commit: many concurrent `ingest` calls, one transaction. [`spawn_writer`] starts the task that drains
//! everything waiting on the channel, commits it at once through a [`GroupCommit`] backend, and answers each caller.
//! One commit (one fsync) then acknowledges many events.

use tokio::sync::{mpsc, oneshot};

use std::collections::HashMap;
use std::sync::Arc;

use crate::{BoxFuture, Ingested, NewEvent, StoreError};

/// Upper bound on events per group commit, so a huge queue of callers does not make one huge transaction.
const MAX_GROUP_EVENTS: usize = 4096;

pub(crate) struct IngestRequest {
    pub batch: Vec<NewEvent>,
    pub reply: oneshot::Sender<Result<Ingested, StoreError>>,
}

/// The callers' batches of one group commit, owned so that a backend may commit them on a thread of its own.
pub(crate) type Batches = Arc<[Vec<NewEvent>]>;

/// Commits the given batches in ONE transaction, all or nothing, and says what it decided for all of them.
pub(crate) trait GroupCommit: Send + Sync + 'static {
    fn commit(&self, batches: Batches) -> BoxFuture<'_, Result<Ingested, StoreError>>;
}

/// The sending half the store keeps; `ingest` goes through [`Ingester::ingest`].
pub(crate) struct Ingester {
    tx: mpsc::Sender<IngestRequest>,
}

pub(crate) fn spawn_writer(backend: impl GroupCommit) -> Ingester {
    let (tx, rx) = mpsc::channel(8192);
    tokio::spawn(writer(backend, rx));
    Ingester { tx }
}

impl Ingester {
    pub(crate) async fn ingest(&self, batch: Vec<NewEvent>) -> Result<Ingested, StoreError> {
        if batch.is_empty() {
            return Ok(Ingested::default());
        }
        let (reply, answer) = oneshot::channel();
        self.tx
            .send(IngestRequest { batch, reply })
            .await
            .map_err(|_| StoreError::Unavailable("ingest writer task has stopped".into()))?;
        answer.await.map_err(|_| {
            StoreError::Unavailable("ingest writer task stopped before answering".into())
        })?
    }
}

/// The part of a group's answer that concerns one caller's batch.
fn share(batch: &[NewEvent], inhibited: &HashMap<&str, &str>) -> Ingested {
    if inhibited.is_empty() {
        return Ingested::default();
    }
    Ingested {
        inhibited: batch
            .iter()
            .filter_map(|e| {
                let rule = inhibited.get(e.id.as_str())?;
                Some((e.id.clone(), (*rule).to_owned()))
            })
            .collect(),
    }
}

/// Runs until every [`Ingester`] is dropped. A failed commit (even a database outage) is answered to its callers and
/// never ends the loop, so the store serves again as soon as the database does.
async fn writer(backend: impl GroupCommit, mut rx: mpsc::Receiver<IngestRequest>) {
    while let Some(first) = rx.recv().await {
        let mut events = first.batch.len();
        let (mut batches, mut replies) = (vec![first.batch], vec![first.reply]);
        while events < MAX_GROUP_EVENTS {
            match rx.try_recv() {
                Ok(req) => {
                    events += req.batch.len();
                    batches.push(req.batch);
                    replies.push(req.reply);
                }
                Err(_) => break,
            }
        }
        let batches: Batches = batches.into();
        let result = backend.commit(batches.clone()).await;
        match result {
            Ok(all) => {
                let by_id: HashMap<&str, &str> = all
                    .inhibited
                    .iter()
                    .map(|(id, rule)| (id.as_str(), rule.as_str()))
                    .collect();
                for (batch, reply) in batches.iter().zip(replies) {
                    let _ = reply.send(Ok(share(batch, &by_id)));
                }
            }
            Err(e) if replies.len() == 1 => {
                if let Some(reply) = replies.pop() {
                    let _ = reply.send(Err(e));
                }
            }
            Err(StoreError::Unavailable(why)) => {
                // The database is down, not one batch bad: retrying each batch alone would make every caller wait
                // out another connection timeout. Answer them all now and keep serving later requests.
                for reply in replies {
                    let _ = reply.send(Err(StoreError::Unavailable(why.clone())));
                }
            }
            Err(_) => {
                // One bad batch (e.g. a duplicate event id) must not fail its neighbours: retry each on its own, so
                // every caller gets the answer its own batch deserves. (A copy per batch: this path is rare.)
                for (batch, reply) in batches.iter().zip(replies) {
                    let result = backend.commit(Arc::from([batch.clone()])).await;
                    let _ = reply.send(result);
                }
            }
        }
    }
}
