//! One queue's messages and SQS's rules for them, with time passed in
//! (`now`, epoch milliseconds) so the rules are tested without waiting:
//! delays, visibility timeouts, receive counts, retention, FIFO message
//! groups (a group with a message in flight gives none) and the 5-minute
//! deduplication window.
//! <https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-visibility-timeout.html>,
//! <https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/FIFO-queues-understanding-logic.html>
//!
//! Invariants: every message is in exactly one of `ready` (receivable now,
//! by `seq`) and `waiting` (by the time it becomes receivable); a message
//! is in flight exactly when it has a receipt, and `receipts` maps that
//! receipt to it; `groups_in_flight` counts in-flight messages per group.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use super::attributes::QueueAttributes;
use super::message::Message;

/// How long SQS remembers a FIFO deduplication id.
pub const DEDUP_WINDOW_MS: i64 = 5 * 60 * 1000;

#[derive(Debug, Default)]
pub struct Queue {
    pub name: String,
    pub attributes: QueueAttributes,
    pub tags: BTreeMap<String, String>,
    pub created_ms: i64,
    pub modified_ms: i64,
    messages: HashMap<u64, Message>,
    ready: BTreeSet<u64>,
    waiting: BTreeSet<(i64, u64)>,
    receipts: HashMap<String, u64>,
    groups_in_flight: HashMap<String, usize>,
    /// FIFO: deduplication id → (message id, sequence number, until).
    dedup: HashMap<String, (String, Option<String>, i64)>,
    next_sequence_number: u128,
    last_retention_sweep_ms: i64,
    pub last_purge_ms: Option<i64>,
}

/// What a receive takes.
pub struct Received {
    pub message: Message,
}

impl Queue {
    pub fn new(name: &str, attributes: QueueAttributes, now: i64) -> Queue {
        Queue {
            name: name.to_owned(),
            attributes,
            created_ms: now,
            modified_ms: now,
            next_sequence_number: 18_000_000_000_000_000_000,
            ..Queue::default()
        }
    }

    pub fn len(&self) -> usize {
        self.messages.len()
    }

    pub fn is_empty(&self) -> bool {
        self.messages.is_empty()
    }

    /// (visible, in flight, delayed), as `ApproximateNumberOfMessages*`.
    pub fn counts(&self, now: i64) -> (usize, usize, usize) {
        let in_flight = self.receipts.len();
        let delayed = self
            .waiting
            .iter()
            .filter(|(at, seq)| *at > now && !self.messages[seq].in_flight())
            .count();
        let visible = self.messages.len() - in_flight - delayed;
        (visible, in_flight, delayed)
    }

    pub fn messages(&self) -> impl Iterator<Item = &Message> {
        self.messages.values()
    }

    /// Adds a message already built (a send, a move, or a restart).
    pub fn insert(&mut self, message: Message) {
        let seq = message.seq;
        if message.in_flight() {
            if let Some(r) = &message.receipt {
                self.receipts.insert(r.clone(), seq);
            }
            if let Some(g) = &message.group_id {
                *self.groups_in_flight.entry(g.clone()).or_default() += 1;
            }
        }
        self.waiting.insert((message.visible_at_ms, seq));
        self.messages.insert(seq, message);
    }

    /// A FIFO send with a deduplication id seen in the last five minutes:
    /// the first message's id and sequence number (SQS answers with them
    /// and keeps one copy).
    pub fn duplicate_of(&self, dedup_id: &str, now: i64) -> Option<(String, Option<String>)> {
        self.dedup
            .get(dedup_id)
            .filter(|(_, _, until)| *until > now)
            .map(|(id, seq, _)| (id.clone(), seq.clone()))
    }

    pub fn remember_dedup(&mut self, dedup_id: &str, id: &str, seq: Option<String>, now: i64) {
        self.dedup.retain(|_, (_, _, until)| *until > now);
        self.dedup.insert(
            dedup_id.to_owned(),
            (id.to_owned(), seq, now + DEDUP_WINDOW_MS),
        );
    }

    pub fn next_sequence_number(&mut self) -> String {
        self.next_sequence_number += 1;
        format!("{}", self.next_sequence_number)
    }

    /// Moves messages whose time has come to `ready`; a message still in
    /// flight when its visibility timeout ends loses its receipt.
    fn promote(&mut self, now: i64) {
        while let Some(&(at, seq)) = self.waiting.first() {
            if at > now {
                break;
            }
            self.waiting.pop_first();
            if let Some(m) = self.messages.get_mut(&seq) {
                if let Some(r) = m.receipt.take() {
                    self.receipts.remove(&r);
                    if let Some(g) = &m.group_id
                        && let Some(n) = self.groups_in_flight.get_mut(g)
                    {
                        *n -= 1;
                        if *n == 0 {
                            self.groups_in_flight.remove(g);
                        }
                    }
                }
                self.ready.insert(seq);
            }
        }
    }

    /// Drops messages older than the retention period (at most once a
    /// second: a scan of the whole queue). Returns the dropped ones.
    pub fn expire(&mut self, now: i64) -> Vec<u64> {
        if now - self.last_retention_sweep_ms < 1000 {
            return Vec::new();
        }
        self.last_retention_sweep_ms = now;
        let keep_ms = i64::from(self.attributes.message_retention_period) * 1000;
        let old: Vec<u64> = self
            .messages
            .values()
            .filter(|m| m.sent_ms + keep_ms <= now)
            .map(|m| m.seq)
            .collect();
        for seq in &old {
            self.remove(*seq);
        }
        old
    }

    /// Removes a message wherever it is.
    pub fn remove(&mut self, seq: u64) -> Option<Message> {
        let m = self.messages.remove(&seq)?;
        self.ready.remove(&seq);
        self.waiting.remove(&(m.visible_at_ms, seq));
        if let Some(r) = &m.receipt {
            self.receipts.remove(r);
            if let Some(g) = &m.group_id
                && let Some(n) = self.groups_in_flight.get_mut(g)
            {
                *n -= 1;
                if *n == 0 {
                    self.groups_in_flight.remove(g);
                }
            }
        }
        Some(m)
    }

    /// Removes every message and returns them in order.
    pub fn take_all(&mut self) -> Vec<Message> {
        let mut seqs: Vec<u64> = self.messages.keys().copied().collect();
        seqs.sort_unstable();
        seqs.into_iter().filter_map(|s| self.remove(s)).collect()
    }

    pub fn purge(&mut self) -> Vec<u64> {
        let all: Vec<u64> = self.messages.keys().copied().collect();
        for seq in &all {
            self.remove(*seq);
        }
        all
    }

    /// The earliest time a waiting message becomes receivable.
    pub fn next_visible_at(&self) -> Option<i64> {
        self.waiting.first().map(|(at, _)| *at)
    }

    /// Messages that have been received `max_receive_count` times and are
    /// receivable again: a redrive policy moves them instead of a receive.
    pub fn take_exhausted(&mut self, now: i64, max_receive_count: u32) -> Vec<Message> {
        self.promote(now);
        let exhausted: Vec<u64> = self
            .ready
            .iter()
            .copied()
            .filter(|seq| self.messages[seq].receive_count >= max_receive_count)
            .collect();
        exhausted.iter().filter_map(|s| self.remove(*s)).collect()
    }

    /// Takes up to `max` receivable messages, in order, making each
    /// invisible for `visibility_ms`, and returns copies as received.
    /// FIFO: a group with a message in flight gives nothing; a group's
    /// messages come in order and together.
    pub fn receive(&mut self, now: i64, max: usize, visibility_ms: i64) -> Vec<Received> {
        self.promote(now);
        let fifo = self.attributes.fifo_queue;
        let mut taken: Vec<u64> = Vec::new();
        let mut blocked: BTreeSet<String> = BTreeSet::new();
        let mut taken_groups: BTreeSet<String> = BTreeSet::new();
        for &seq in &self.ready {
            if taken.len() >= max {
                break;
            }
            if fifo {
                let group = self.messages[&seq].group_id.clone().unwrap_or_default();
                if blocked.contains(&group)
                    || (self.groups_in_flight.contains_key(&group)
                        && !taken_groups.contains(&group))
                {
                    blocked.insert(group);
                    continue;
                }
                taken_groups.insert(group);
            }
            taken.push(seq);
        }
        let mut out = Vec::with_capacity(taken.len());
        for seq in taken {
            self.ready.remove(&seq);
            let receipt = new_receipt(&self.name, seq);
            let Some(m) = self.messages.get_mut(&seq) else {
                continue;
            };
            m.receive_count += 1;
            m.first_receive_ms.get_or_insert(now);
            m.visible_at_ms = now + visibility_ms;
            m.receipt = Some(receipt.clone());
            self.receipts.insert(receipt, seq);
            if let Some(g) = &m.group_id {
                *self.groups_in_flight.entry(g.clone()).or_default() += 1;
            }
            self.waiting.insert((m.visible_at_ms, seq));
            out.push(Received { message: m.clone() });
        }
        out
    }

    /// The in-flight message a receipt handle names.
    pub fn by_receipt(&self, receipt: &str) -> Option<u64> {
        self.receipts.get(receipt).copied()
    }

    /// Whether a receipt handle was ever issued by this queue (a stale one
    /// of a message received again or deleted still "belongs" to it).
    pub fn owns_receipt(&self, receipt: &str) -> bool {
        receipt_queue(receipt).is_some_and(|q| q == self.name)
    }

    /// Changes an in-flight message's visibility timeout, counted from now.
    pub fn change_visibility(&mut self, seq: u64, now: i64, timeout_ms: i64) -> bool {
        let Some(m) = self.messages.get_mut(&seq) else {
            return false;
        };
        if !m.in_flight() {
            return false;
        }
        self.waiting.remove(&(m.visible_at_ms, seq));
        m.visible_at_ms = now + timeout_ms;
        self.waiting.insert((m.visible_at_ms, seq));
        self.promote(now);
        true
    }

    pub fn message(&self, seq: u64) -> Option<&Message> {
        self.messages.get(&seq)
    }
}

/// A receipt handle: opaque to clients, unique per receive; it names its
/// queue so a handle of another queue is told apart from a stale one.
fn new_receipt(queue: &str, seq: u64) -> String {
    use base64::Engine;
    let raw = format!("{queue}\u{1}{seq}\u{1}{}", uuid::Uuid::new_v4().simple());
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw)
}

fn receipt_queue(receipt: &str) -> Option<String> {
    use base64::Engine;
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(receipt)
        .ok()?;
    let text = String::from_utf8(raw).ok()?;
    text.split('\u{1}').next().map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn msg(seq: u64, group: Option<&str>, now: i64) -> Message {
        Message {
            seq,
            id: format!("m{seq}"),
            body: format!("body {seq}"),
            attributes: BTreeMap::new(),
            trace_header: None,
            sender_id: "000000000000".into(),
            sent_ms: now,
            visible_at_ms: now,
            receive_count: 0,
            first_receive_ms: None,
            receipt: None,
            group_id: group.map(str::to_owned),
            dedup_id: None,
            sequence_number: None,
            dead_letter_source_arn: None,
        }
    }

    fn ids(r: &[Received]) -> Vec<u64> {
        r.iter().map(|r| r.message.seq).collect()
    }

    #[test]
    fn a_received_message_is_invisible_until_its_timeout_then_comes_back() {
        let mut q = Queue::new("q", QueueAttributes::default(), 0);
        q.insert(msg(1, None, 0));
        q.insert(msg(2, None, 0));
        let first = q.receive(0, 1, 30_000);
        assert_eq!(ids(&first), [1]);
        assert_eq!(q.counts(0), (1, 1, 0));
        assert_eq!(ids(&q.receive(10, 10, 30_000)), [2]);
        assert!(q.receive(20, 10, 30_000).is_empty());
        let again = q.receive(30_000, 10, 30_000);
        assert_eq!(ids(&again), [1]);
        assert_eq!(again[0].message.receive_count, 2);
        // The first receipt is stale now.
        let stale = first[0].message.receipt.clone().expect("receipt");
        assert_eq!(q.by_receipt(&stale), None);
        assert!(q.owns_receipt(&stale));
    }

    #[test]
    fn a_delayed_message_counts_as_delayed_until_its_time() {
        let mut q = Queue::new("q", QueueAttributes::default(), 0);
        let mut m = msg(1, None, 0);
        m.visible_at_ms = 5_000;
        q.insert(m);
        assert_eq!(q.counts(0), (0, 0, 1));
        assert!(q.receive(4_999, 10, 1000).is_empty());
        assert_eq!(ids(&q.receive(5_000, 10, 1000)), [1]);
    }

    #[test]
    fn a_fifo_group_with_a_message_in_flight_gives_nothing_until_it_is_done() {
        let attributes = QueueAttributes {
            fifo_queue: true,
            ..QueueAttributes::default()
        };
        let mut q = Queue::new("q.fifo", attributes, 0);
        q.insert(msg(1, Some("a"), 0));
        q.insert(msg(2, Some("a"), 0));
        q.insert(msg(3, Some("b"), 0));
        // A group's messages come together, in order.
        assert_eq!(ids(&q.receive(0, 2, 30_000)), [1, 2]);
        // Group a is in flight: only b.
        let b = q.receive(0, 10, 30_000);
        assert_eq!(ids(&b), [3]);
        q.insert(msg(4, Some("a"), 0));
        assert!(q.receive(0, 10, 30_000).is_empty(), "a is still in flight");
        for seq in [1, 2] {
            q.remove(seq);
        }
        assert_eq!(ids(&q.receive(0, 10, 30_000)), [4]);
    }

    #[test]
    fn visibility_changes_count_from_now_and_zero_makes_it_receivable() {
        let mut q = Queue::new("q", QueueAttributes::default(), 0);
        q.insert(msg(1, None, 0));
        q.receive(0, 1, 30_000);
        assert!(q.change_visibility(1, 1_000, 0));
        assert_eq!(ids(&q.receive(1_000, 1, 30_000)), [1]);
        assert!(!q.change_visibility(9, 0, 0), "unknown message");
    }

    #[test]
    fn retention_drops_old_messages_and_dedup_ids_expire_after_five_minutes() {
        let mut q = Queue::new("q", QueueAttributes::default(), 0);
        q.insert(msg(1, None, 0));
        let retention = i64::from(q.attributes.message_retention_period) * 1000;
        assert!(q.expire(retention - 1).is_empty());
        assert_eq!(q.expire(retention + 1000), [1]);
        q.remember_dedup("d", "m1", None, 0);
        assert!(q.duplicate_of("d", DEDUP_WINDOW_MS - 1).is_some());
        assert!(q.duplicate_of("d", DEDUP_WINDOW_MS).is_none());
    }

    #[test]
    fn exhausted_messages_are_taken_for_the_dead_letter_queue() {
        let mut q = Queue::new("q", QueueAttributes::default(), 0);
        q.insert(msg(1, None, 0));
        q.receive(0, 1, 0);
        q.receive(0, 1, 0);
        assert!(q.take_exhausted(0, 3).is_empty());
        q.receive(0, 1, 0);
        let moved = q.take_exhausted(0, 3);
        assert_eq!(moved.len(), 1);
        assert_eq!(q.len(), 0);
    }
}
