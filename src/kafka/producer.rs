//! The Kafka engine's pipelined producer: records handed to librdkafka
//! without waiting for their delivery reports, many calls in flight.
//!
//! [`KafkaStore::produce`](crate::kafka::KafkaStore::produce) waits for
//! its call's delivery reports (and, for a batch, its transaction's
//! commit) before it returns. A [`KafkaProducer`] hands each call's
//! records to librdkafka at once and returns a [`KafkaTicket`]; the ids
//! come from the delivery reports' offsets (offset + 1), as with
//! `produce`.
//!
//! - **With transactions** (`kafka.transactions`, where the cluster takes
//!   them: [`Capabilities::atomic_batch`](crate::Capabilities::atomic_batch))
//!   the producer has a transactional producer of its own, and every call
//!   it sends, of one message or many, enters one open transaction. The
//!   transaction is committed when a ticket is waited on (or awaited),
//!   when [`KafkaProducer::flush`] is called, when as many calls or bytes
//!   as the producer holds at most are in it, or when the producer is
//!   dropped. The calls of one transaction are stored together or not at
//!   all: each call is **atomic**, and a failure (an aborted transaction)
//!   fails every call in it with [`ProduceError::Partial`] (nothing
//!   stored), or [`ProduceError::TopicNotFound`] for a call whose topic is
//!   gone; the calls sent after it go into the next transaction. One
//!   commit marker per transaction, not per call: ids have a gap after
//!   each transaction ([`Capabilities::contiguous_ids`](crate::Capabilities::contiguous_ids)).
//! - **Without** transactions, the records go through the engine's
//!   idempotent producer, as `produce`'s do, and a ticket resolves once its
//!   call's delivery reports are in. A call is stored message by message:
//!   a failure part way is [`ProduceError::Partial`] with the ids of the
//!   stored prefix. The idempotent producer does not let one record pass
//!   another of the same partition, so a failure of one call leaves the
//!   calls after it to their own reports.
//!
//! Either way the ids of a topic follow the **order of the calls** (one
//! partition per topic, records in the order sent, retries that keep it),
//! nothing is stored twice across a broker's failover, and a ticket
//! resolves **after every in-sync replica** acknowledged its records
//! (`acks=all`), with a transaction's records readable.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use parking_lot::Mutex;
use rdkafka::error::KafkaError;
use rdkafka::producer::Producer as _;

use crate::error::ProduceError;
use crate::kafka::engine::{Deliveries, Engine, RdProducer};
use crate::kafka::produce::{check, commit, renew_if_fatal, send, settle, visible};
use crate::kafka::topics::storage;
use crate::message::{DEFAULT_MAX_IN_FLIGHT, DEFAULT_MAX_IN_FLIGHT_BYTES, Message, ProducedIds};

/// What a call's ticket receives.
type Settled = Result<ProducedIds, ProduceError>;

/// The Kafka engine's pipelined producer (see the [module documentation](self)).
///
/// ```no_run
/// use rocksmq::Message;
/// # fn run(kafka: &rocksmq::kafka::KafkaStore) -> Result<(), Box<dyn std::error::Error>> {
/// let producer = kafka.producer();
/// let tickets: Vec<_> = (0..100)
///     .map(|i| producer.send("events", vec![Message::new(format!("event {i}"))]))
///     .collect::<Result<_, _>>()?;
/// for ticket in tickets {
///     let ids = ticket.wait()?; // In call order.
/// #   let _ = ids;
/// }
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
pub struct KafkaProducer {
    shared: Arc<Shared>,
}

/// A call sent with [`KafkaProducer::send`]: wait for it (or await it) to
/// learn its ids once it is stored.
#[derive(Debug)]
#[must_use = "a ticket tells whether its call was stored"]
pub struct KafkaTicket {
    shared: Arc<Shared>,
    seq: u64,
    /// Whether its outcome was taken.
    done: bool,
}

/// What a producer and its tickets share.
struct Shared {
    engine: Arc<Engine>,
    max_calls: usize,
    max_bytes: usize,
    state: Mutex<State>,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared")
            .field("engine", &self.engine)
            .field("max_calls", &self.max_calls)
            .field("max_bytes", &self.max_bytes)
            .finish_non_exhaustive()
    }
}

/// The calls in flight, and the outcomes of those settled whose tickets
/// have not asked yet.
#[derive(Default)]
struct State {
    next_seq: u64,
    /// The producer's own transactional producer: made at its first call
    /// where the engine uses transactions, dropped after an abort.
    transactional: Option<RdProducer>,
    /// Whether `transactional` has a transaction open.
    open: bool,
    /// A record refused before it entered the open transaction: the
    /// transaction is aborted at its commit.
    refused: Option<KafkaError>,
    in_flight: Vec<InFlight>,
    in_flight_bytes: usize,
    outcomes: HashMap<u64, Settled>,
    /// Calls whose tickets were dropped unsettled: their outcomes are not
    /// kept.
    abandoned: HashSet<u64>,
}

/// A call whose records were handed to librdkafka.
struct InFlight {
    seq: u64,
    topic: String,
    /// Its Kafka topic.
    name: String,
    deliveries: Arc<Deliveries>,
}

impl KafkaProducer {
    pub(crate) fn new(engine: &Arc<Engine>) -> Self {
        Self {
            shared: Arc::new(Shared {
                engine: Arc::clone(engine),
                max_calls: DEFAULT_MAX_IN_FLIGHT,
                max_bytes: DEFAULT_MAX_IN_FLIGHT_BYTES,
                state: Mutex::new(State::default()),
            }),
        }
    }

    /// This producer, with at most `calls` calls (at least one) and `bytes`
    /// message bytes in flight (in one transaction, where it uses them)
    /// before a send settles them (defaults [`DEFAULT_MAX_IN_FLIGHT`] and
    /// [`DEFAULT_MAX_IN_FLIGHT_BYTES`]). Set it before the first send (a
    /// producer with tickets out keeps its limits).
    #[must_use]
    pub fn with_max_in_flight(mut self, calls: usize, bytes: usize) -> Self {
        if let Some(shared) = Arc::get_mut(&mut self.shared) {
            shared.max_calls = calls.max(1);
            shared.max_bytes = bytes;
        }
        self
    }

    /// Sends `messages` to `topic` as one call: its records are handed to
    /// librdkafka now, and the ticket tells their ids once they are stored.
    /// The call is checked first, as
    /// [`KafkaStore::produce`](crate::kafka::KafkaStore::produce) checks
    /// it. If the producer already holds as many calls or bytes as it may,
    /// they are settled first (their transaction committed).
    ///
    /// # Errors
    /// [`ProduceError::Closed`], [`ProduceError::TopicNotFound`],
    /// [`ProduceError::MessageTooLarge`] (nothing of the call is sent); a
    /// storage error when no transaction can begin or the topic's existence
    /// cannot be learnt.
    #[allow(clippy::needless_pass_by_value)] // One signature on every engine's producer.
    pub fn send(&self, topic: &str, messages: Vec<Message>) -> Result<KafkaTicket, ProduceError> {
        let shared = &self.shared;
        let engine = &shared.engine;
        let name = check(engine, topic, &messages)?;
        let bytes = messages.iter().map(|message| message.payload.len()).sum();
        let mut state = shared.state.lock();
        if state.in_flight.len() >= shared.max_calls
            || state.in_flight_bytes.saturating_add(bytes) > shared.max_bytes
        {
            shared.settle_in_flight(&mut state);
        }
        let seq = state.next_seq;
        let ticket = KafkaTicket {
            shared: Arc::clone(shared),
            seq,
            done: false,
        };
        if messages.is_empty() {
            // The id the next message will get, once what is in flight is in.
            shared.settle_in_flight(&mut state);
            let next = engine
                .watermarks(&name)
                .map(|(_, high)| high.unsigned_abs() + 1)
                .map(|next| ProducedIds::from(next..next))
                .map_err(|error| {
                    ProduceError::Storage(storage(format!("producing to topic `{topic}`"), &error))
                })?;
            state.next_seq += 1;
            state.outcomes.insert(seq, Ok(next));
            return Ok(ticket);
        }
        let deliveries = if engine.transactional.is_some() {
            let producer = shared.begin(&mut state, topic)?;
            let (deliveries, refused) = send(producer, &name, &messages);
            if let Some(error) = refused {
                state.refused.get_or_insert(error);
            }
            deliveries
        } else {
            send(&engine.producer, &name, &messages).0
        };
        state.next_seq += 1;
        state.in_flight_bytes = state.in_flight_bytes.saturating_add(bytes);
        state.in_flight.push(InFlight {
            seq,
            topic: topic.to_owned(),
            name,
            deliveries,
        });
        Ok(ticket)
    }

    /// Settles every call in flight (commits their transaction, waits for
    /// their delivery reports); their tickets then resolve at once.
    pub fn flush(&self) {
        self.shared.settle_in_flight(&mut self.shared.state.lock());
    }

    /// Calls sent and not yet settled.
    #[must_use]
    pub fn in_flight(&self) -> usize {
        self.shared.state.lock().in_flight.len()
    }
}

impl Drop for KafkaProducer {
    /// Settles what was sent: a call sent is committed even if its ticket
    /// is dropped.
    fn drop(&mut self) {
        self.flush();
    }
}

impl Shared {
    /// The producer's transactional producer with a transaction open: made
    /// (and its transactions initialised) if it has none.
    fn begin<'a>(&self, state: &'a mut State, topic: &str) -> Result<&'a RdProducer, ProduceError> {
        let unavailable = |error: &KafkaError| {
            ProduceError::Storage(storage(
                format!("beginning a transaction to produce to topic `{topic}`"),
                error,
            ))
        };
        if state.transactional.is_none() {
            state.transactional = Some(
                self.engine
                    .new_transactional()
                    .map_err(|error| unavailable(&error))?,
            );
        }
        let producer = state.transactional.as_mut().expect("made above");
        if !state.open {
            if let Err(error) = producer.begin_transaction() {
                renew_if_fatal(&self.engine, producer, &error);
                return Err(unavailable(&error));
            }
            state.open = true;
        }
        Ok(state.transactional.as_ref().expect("made above"))
    }

    /// Settles every call in flight: commits the open transaction (or
    /// aborts it), waits for the delivery reports, and leaves each call's
    /// outcome for its ticket.
    fn settle_in_flight(&self, state: &mut State) {
        let calls = std::mem::take(&mut state.in_flight);
        state.in_flight_bytes = 0;
        let aborted = if state.open {
            state.open = false;
            let refused = state.refused.take();
            let producer = state.transactional.as_ref().expect("a transaction is open");
            if refused.is_none() {
                // The reports before the commit, as `produce` waits for
                // them (a commit with reports due polls in 100 ms steps).
                for call in &calls {
                    drop(call.deliveries.wait());
                }
            }
            let committed = commit(&self.engine, producer, refused.as_ref());
            if committed.is_err() {
                // Every report comes, at the latest when its delivery
                // times out; then a producer with a new transactional id
                // for the next transaction, as `produce` does.
                for call in &calls {
                    drop(call.deliveries.wait());
                }
                state.transactional = None;
            }
            committed.err()
        } else {
            None
        };
        let count = calls.len();
        for call in calls {
            let settled = if let Some(reason) = &aborted {
                Err(self.aborted(&call, count, reason))
            } else {
                let outcomes = call.deliveries.wait();
                if state.transactional.is_some() {
                    visible(&self.engine, &call.name, &outcomes);
                }
                settle(&self.engine, &call.topic, &call.name, &outcomes)
            };
            if !state.abandoned.remove(&call.seq) {
                state.outcomes.insert(call.seq, settled);
            }
        }
    }

    /// The error of `call`, one of `count` calls of a transaction aborted
    /// for `reason`: nothing of it is stored.
    fn aborted(&self, call: &InFlight, count: usize, reason: &str) -> ProduceError {
        if !self.engine.exists(&call.name).unwrap_or(true) {
            return ProduceError::TopicNotFound {
                topic: call.topic.clone(),
            };
        }
        ProduceError::Partial {
            topic: call.topic.clone(),
            stored: Vec::new(),
            index: 0,
            reason: format!(
                "the transaction of the producer's {count} calls in flight was aborted: {reason}"
            ),
        }
    }
}

impl KafkaTicket {
    /// Waits until the call is stored (committing its transaction, or
    /// waiting for its delivery reports, with every call sent before it);
    /// returns its ids.
    ///
    /// # Errors
    /// What the call met: any error of
    /// [`KafkaStore::produce`](crate::kafka::KafkaStore::produce) but the
    /// checks that `send` makes; [`ProduceError::Partial`] with nothing
    /// stored when its transaction was aborted.
    pub fn wait(mut self) -> Result<ProducedIds, ProduceError> {
        self.take_outcome()
    }

    /// Whether the call was settled (a wait returns at once).
    #[must_use]
    pub fn is_settled(&self) -> bool {
        self.shared.state.lock().outcomes.contains_key(&self.seq)
    }

    fn take_outcome(&mut self) -> Result<ProducedIds, ProduceError> {
        self.done = true;
        let mut state = self.shared.state.lock();
        if !state.outcomes.contains_key(&self.seq) {
            self.shared.settle_in_flight(&mut state);
        }
        state
            .outcomes
            .remove(&self.seq)
            .unwrap_or(Err(ProduceError::Closed))
    }
}

impl std::future::Future for KafkaTicket {
    type Output = Result<ProducedIds, ProduceError>;

    /// Ready at once: a poll settles the calls in flight, as
    /// [`KafkaTicket::wait`] does, blocking the polling thread for the
    /// commit and the delivery reports (a round trip to the brokers).
    fn poll(
        self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Self::Output> {
        std::task::Poll::Ready(self.get_mut().take_outcome())
    }
}

impl Drop for KafkaTicket {
    /// The call is still settled; its outcome is not kept for anybody.
    fn drop(&mut self) {
        if !self.done {
            let mut state = self.shared.state.lock();
            if state.outcomes.remove(&self.seq).is_none() {
                state.abandoned.insert(self.seq);
            }
        }
    }
}
