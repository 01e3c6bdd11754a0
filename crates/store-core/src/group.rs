//! Group commit: many concurrent `ingest` calls, one transaction. [`spawn_writer`] starts the task that drains
//! everything waiting on the channel, commits it at once through a [`GroupCommit`] backend, and answers each caller.
//! One commit (one fsync) then acknowledges many events.

use tokio::sync::{mpsc, oneshot};

use std::collections::HashMap;
use std::sync::Arc;

use crate::ingest::{outbox_of, to_json};
use crate::{BoxFuture, Ingested, NewEvent, StoreError};

/// Upper bound on events per group commit, so a huge queue of callers does not make one huge transaction.
const MAX_GROUP_EVENTS: usize = 4096;

pub(crate) struct IngestRequest {
    pub batch: Batch,
    pub reply: oneshot::Sender<Result<Ingested, StoreError>>,
}

/// One caller's events, with the JSON the bulk insert writes of each already encoded.
///
/// The encoding happens in the caller's task ([`Ingester::ingest`]), on whichever core it runs, rather than in the
/// one writer: everything the writer does is serial and holds up every caller, and serialising a rendered card is
/// a good part of what an alert costs.
#[derive(Clone)]
pub(crate) struct Batch {
    pub events: Vec<NewEvent>,
    /// `encoded[i]` is `events[i]`'s.
    pub encoded: Vec<Encoded>,
}

/// An event's fate and the arguments of its outbox items, as the rows store them (its body comes encoded).
#[derive(Clone)]
pub(crate) struct Encoded {
    pub fate: String,
    /// One per [`crate::ingest::outbox_of`] item, in order.
    pub items: Vec<String>,
}

impl Encoded {
    fn of(ev: &NewEvent) -> Result<Encoded, StoreError> {
        Ok(Encoded {
            fate: to_json("fate", &ev.fate)?,
            items: outbox_of(ev)
                .iter()
                .map(|item| to_json("outbox args", &item.args))
                .collect::<Result<_, _>>()?,
        })
    }
}

/// The callers' batches of one group commit, owned so that a backend may commit them on a thread of its own.
pub(crate) type Batches = Arc<[Batch]>;

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
        let encoded = batch.iter().map(Encoded::of).collect::<Result<_, _>>()?;
        let batch = Batch {
            events: batch,
            encoded,
        };
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
        let mut events = first.batch.events.len();
        let (mut batches, mut replies) = (vec![first.batch], vec![first.reply]);
        while events < MAX_GROUP_EVENTS {
            match rx.try_recv() {
                Ok(req) => {
                    events += req.batch.events.len();
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
                    let _ = reply.send(Ok(share(&batch.events, &by_id)));
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
        // Freeing hundreds of events (their JSON trees) took an eighth of the writer's time in a profile of 10-alert
        // requests; it is done on a blocking thread so the next commit can start at once.
        tokio::task::spawn_blocking(move || drop(batches));
    }
}
