//! The log on one real nats-server: intake deduplication, the tailer's order, kinds and resumption, and the
//! owner's fencing basics.

mod common;

use std::time::Duration;

use abstractgateway_store::StoreError;
use abstractgateway_store::replica::{EntryKind, Log};
use abstractgateway_testkit::nats::NatsCluster;
use common::{Applied, MemApplier, config, connect, raw_jetstream, runtime, wait_until, within};

#[test]
fn intake_duplicates_land_once() {
    let nats = NatsCluster::start(1);
    let rt = runtime();
    let cluster = connect(&rt, config(&nats.url(), "a"));
    let log = cluster.log();

    let first = log.append_intake("cmd:1", b"one".to_vec()).expect("append");
    let again = log
        .append_intake("cmd:1", b"one".to_vec())
        .expect("append again");
    assert!(!first.duplicate);
    assert_eq!(
        again.seq, first.seq,
        "a duplicate answers the original position"
    );
    assert!(again.duplicate, "and says it is one");
    let other = log.append_intake("cmd:2", b"two".to_vec()).expect("append");
    assert_eq!(other.seq, first.seq + 1);
    assert!(matches!(
        log.append_intake("", b"x".to_vec()),
        Err(StoreError::Invalid(_))
    ));

    let replica = MemApplier::new();
    let tailer = cluster.tail(replica.clone());
    within(&rt, 20, "caught up", tailer.caught_up());
    assert_eq!(
        replica.entries(),
        vec![
            Applied {
                seq: first.seq,
                kind: EntryKind::Intake,
                entry: b"one".to_vec()
            },
            Applied {
                seq: other.seq,
                kind: EntryKind::Intake,
                entry: b"two".to_vec()
            },
        ]
    );
}

#[test]
fn tailer_delivers_in_order_with_kinds_and_resumes() {
    let nats = NatsCluster::start(1);
    let rt = runtime();
    let cluster = connect(&rt, config(&nats.url(), "a"));
    let log = cluster.log();
    assert!(matches!(
        log.append_owned(0, b"no lease".to_vec()),
        Err(StoreError::Fenced)
    ));

    let replica = MemApplier::new();
    let tailer = cluster.tail(replica.clone());
    let lease = within(
        &rt,
        20,
        "acquire",
        cluster.acquire(replica.clone(), Box::new(|| {})),
    )
    .expect("acquire a free lease");
    assert!(log.is_owner());

    let mut expected = vec![(EntryKind::Marker, Vec::new())];
    for i in 0..5u8 {
        log.append_owned(0, vec![b'o', i]).expect("owned append");
        expected.push((EntryKind::Owned, vec![b'o', i]));
        log.append_intake(&format!("in:{i}"), vec![b'i', i])
            .expect("intake append");
        expected.push((EntryKind::Intake, vec![b'i', i]));
    }
    within(&rt, 20, "caught up", tailer.caught_up());
    let got = replica.entries();
    let kinds: Vec<(EntryKind, Vec<u8>)> = got.iter().map(|a| (a.kind, a.entry.clone())).collect();
    assert_eq!(kinds, expected);
    let seqs: Vec<u64> = got.iter().map(|a| a.seq).collect();
    assert_eq!(
        seqs,
        (1..=11).collect::<Vec<u64>>(),
        "every entry, in order, once"
    );

    // Stopped, then started again: it resumes after what the replica holds.
    drop(tailer);
    for i in 5..8u8 {
        log.append_owned(0, vec![b'o', i]).expect("owned append");
    }
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        replica.entries().len(),
        11,
        "a dropped tailer delivers nothing"
    );
    let tailer = cluster.tail(replica.clone());
    within(&rt, 20, "caught up again", tailer.caught_up());
    let got = replica.entries();
    assert_eq!(
        got.iter().map(|a| a.seq).collect::<Vec<_>>(),
        (1..=14).collect::<Vec<u64>>()
    );
    assert_eq!(got[13].entry, vec![b'o', 7]);

    // A fresh replica gets the whole stream from the start.
    let fresh = MemApplier::new();
    let fresh_tailer = cluster.tail(fresh.clone());
    within(&rt, 20, "fresh replica caught up", fresh_tailer.caught_up());
    assert_eq!(fresh.entries(), got);

    // Entries appended while tailing arrive without another call.
    let seq = log
        .append_intake("late", b"late".to_vec())
        .expect("append")
        .seq;
    wait_until(10, "the live entry is applied", || {
        fresh.entries().len() == 15
    });
    assert_eq!(fresh.entries()[14].seq, seq);

    within(&rt, 20, "release", lease.release()).expect("release");
    assert!(log.is_fenced());
    assert!(matches!(
        log.append_owned(0, b"after release".to_vec()),
        Err(StoreError::Fenced)
    ));
    assert!(matches!(
        within(
            &rt,
            5,
            "acquire after release",
            cluster.acquire(replica, Box::new(|| {}))
        ),
        Err(abstractgateway_store_nats::NatsError::Fenced)
    ));
}

/// An owner append whose acknowledgment was lost and whose retry is refused (the server checks the expected last
/// subject sequence before the duplicate window: 2.15.1 refuses the retry with 10071 instead of answering it as a
/// duplicate) is recognised by its `Nats-Msg-Id` as the journal's last entry: it answers that entry's position,
/// appends nothing twice, and does not fence the owner.
#[test]
fn an_owner_append_whose_ack_was_lost_lands_once() {
    let nats = NatsCluster::start(1);
    let rt = runtime();
    let cluster = connect(&rt, config(&nats.url(), "a"));
    let replica = MemApplier::new();
    let tailer = cluster.tail(replica.clone());
    let lease = within(
        &rt,
        20,
        "acquire",
        cluster.acquire(replica.clone(), Box::new(|| {})),
    )
    .expect("acquire");
    let log = cluster.log();
    let first = log.append_owned(0, b"first".to_vec()).expect("append");

    // The first attempt of the next append lands, but its acknowledgment never reaches the owner.
    let (landed, retry) = rt.block_on(async {
        let js = raw_jetstream(&nats.url()).await;
        let publish = |payload: &'static [u8]| {
            let js = js.clone();
            let id = format!("j:{}:2", lease.epoch());
            async move {
                js.send_publish(
                    "ag.j",
                    async_nats::jetstream::message::PublishMessage::build()
                        .payload(payload.into())
                        .message_id(id)
                        .expected_last_subject_sequence(first),
                )
                .await
                .expect("sent")
                .await
            }
        };
        let landed = publish(b"second").await.expect("the first attempt lands");
        let retry = publish(b"second").await;
        (landed.sequence, retry)
    });
    match retry {
        Ok(ack) => assert!(ack.duplicate && ack.sequence == landed, "{ack:?}"),
        Err(err) => assert_eq!(
            err.kind(),
            async_nats::jetstream::context::PublishErrorKind::WrongLastSequence,
            "{err}"
        ),
    }

    // The owner's own retry of that append answers the landed entry's position.
    let second = log
        .append_owned(0, b"second".to_vec())
        .expect("the retry is not refused");
    assert_eq!(second, landed);
    assert!(log.is_owner(), "not fenced by its own entry");
    let third = log
        .append_owned(0, b"third".to_vec())
        .expect("append after it");
    assert_eq!(third, second + 1);

    within(&rt, 20, "caught up", tailer.caught_up());
    let entries: Vec<(EntryKind, Vec<u8>)> = replica
        .entries()
        .into_iter()
        .map(|a| (a.kind, a.entry))
        .collect();
    assert_eq!(
        entries,
        vec![
            (EntryKind::Marker, vec![]),
            (EntryKind::Owned, b"first".to_vec()),
            (EntryKind::Owned, b"second".to_vec()),
            (EntryKind::Owned, b"third".to_vec()),
        ]
    );
}
