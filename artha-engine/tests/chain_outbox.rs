//! The outbox over the real contracts on the embedded EVM, with an RPC
//! outage injected between the outbox and the chain.
#![cfg(feature = "embedded-chain")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod chain_suite;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};

use alloy_primitives::{Address, B256, Bytes, U256};
use artha_core::{ChainJobStatus, Error, ErrorKind, JobId, ProofChain, Result};
use artha_engine::chain::contracts::revert_name;
use artha_engine::chain::embedded::EmbeddedEvm;
use artha_engine::chain::outbox::{Outbox, State, Write};
use artha_engine::chain::{EvmBackend, EvmReceipt};
use async_trait::async_trait;
use chain_suite::*;

/// The embedded chain behind a link that can go down; counts what it sends.
#[derive(Debug)]
struct Link {
    evm: Arc<EmbeddedEvm>,
    down: AtomicBool,
    sent: AtomicU32,
}

impl Link {
    fn check(&self) -> Result<()> {
        if self.down.load(Ordering::SeqCst) {
            return Err(Error::new(
                ErrorKind::Unavailable,
                "connection refused (link down)",
            ));
        }
        Ok(())
    }
}

#[async_trait]
impl EvmBackend for Link {
    async fn deploy(&self, from: Address, code: Bytes) -> Result<EvmReceipt> {
        self.check()?;
        EmbeddedEvm::deploy(&self.evm, from, code)
    }
    async fn send(
        &self,
        from: Address,
        to: Address,
        data: Bytes,
        value: U256,
    ) -> Result<EvmReceipt> {
        self.check()?;
        self.sent.fetch_add(1, Ordering::SeqCst);
        EmbeddedEvm::send(&self.evm, from, to, data, value)
    }
    async fn call(&self, from: Address, to: Address, data: Bytes) -> Result<Bytes> {
        self.check()?;
        EmbeddedEvm::call(&self.evm, from, to, data)
    }
    async fn balance(&self, who: Address) -> Result<U256> {
        EmbeddedEvm::balance(&self.evm, who)
    }
    async fn timestamp(&self) -> Result<u64> {
        Ok(self.evm.last_timestamp())
    }
    async fn next_block_time(&self) -> Result<u64> {
        Ok(self.evm.now())
    }
    async fn receipt(&self, tx: B256) -> Result<Option<EvmReceipt>> {
        Ok(EmbeddedEvm::receipt(&self.evm, &tx))
    }
    async fn increase_time(&self, secs: u64) -> Result<()> {
        self.evm.advance_time(secs)
    }
}

#[tokio::test]
async fn writes_survive_an_outage_and_a_restart_without_duplicates() {
    let tmp = tempfile::tempdir().unwrap();
    let evm = Arc::new(EmbeddedEvm::in_memory());
    let accounts = dev_accounts();
    for a in accounts.all() {
        evm.fund(a, FUNDING).unwrap();
    }
    let link = Arc::new(Link {
        evm: evm.clone(),
        down: AtomicBool::new(false),
        sent: AtomicU32::new(0),
    });
    // Deployed, with the node registered and certified.
    let p = deploy(link.clone(), accounts).await;
    // The outbox sends each write as the party that makes it.
    let parties = p.chain_parties();
    let c = &p.worker;
    let path = tmp.path().join("outbox.json");
    let job = JobId::from_bytes([5; 16]);

    // The link goes down: the write is kept, not lost.
    link.down.store(true, Ordering::SeqCst);
    let ob = Outbox::open(&parties, &path).unwrap();
    let e = ob
        .write(Write::Submit(submission(job, arth(10))))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unavailable);
    assert!(matches!(
        ob.entries().await[0].state,
        State::Pending { attempts: 1, .. }
    ));
    assert_eq!(ob.flush().await.unwrap(), 1, "still pending while down");
    drop(ob);

    // Restart with the link back: the pending write goes out exactly once.
    link.down.store(false, Ordering::SeqCst);
    let before = link.sent.load(Ordering::SeqCst);
    let ob = Outbox::open(&parties, &path).unwrap();
    assert_eq!(ob.flush().await.unwrap(), 0);
    assert_eq!(link.sent.load(Ordering::SeqCst) - before, 1);
    assert_eq!(c.job_status(&job).await.unwrap(), ChainJobStatus::Submitted);
    let State::Done {
        receipt: Some(submitted),
    } = ob.entries().await[0].state.clone()
    else {
        panic!("{:?}", ob.entries().await)
    };
    assert_eq!(sender(c, &submitted).await, accounts.submitter);
    // Writing it again is answered from the record, with no transaction.
    ob.write(Write::Submit(submission(job, arth(10))))
        .await
        .unwrap();
    assert_eq!(link.sent.load(Ordering::SeqCst) - before, 1);

    // A crash after sending but before recording: the effect is on chain, the
    // entry is pending; flush finds it done and sends nothing.
    let ob2 = Outbox::open(&parties, tmp.path().join("outbox2.json")).unwrap();
    link.down.store(true, Ordering::SeqCst);
    let _ = ob2.write(Write::Assign { job, node: node() }).await;
    link.down.store(false, Ordering::SeqCst);
    p.scheduler.assign(&job, &node()).await.unwrap(); // the "old process" had sent it
    let before = link.sent.load(Ordering::SeqCst);
    assert_eq!(ob2.flush().await.unwrap(), 0);
    assert_eq!(link.sent.load(Ordering::SeqCst), before, "nothing re-sent");
    assert!(matches!(
        ob2.entries().await[0].state,
        State::Done { receipt: None }
    ));
    assert_eq!(c.job_status(&job).await.unwrap(), ChainJobStatus::Assigned);

    // A write the chain refuses (not a duplicate) is dropped with its named revert.
    let e = ob.write(Write::Finalize { job }).await.unwrap_err();
    assert_eq!(revert_name(&e), Some("NotCommitted"), "{e}");
    assert_eq!(e.kind(), ErrorKind::Reverted, "{e}");
    assert_eq!(e.context_value("action"), Some("finalize"));
    assert_eq!(ob.entries().await.len(), 1);

    std::fs::write(&path, b"[oops").unwrap();
    assert_eq!(
        Outbox::open(&parties, &path).unwrap_err().kind(),
        ErrorKind::Corrupted
    );
}
