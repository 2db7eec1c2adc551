//! The chain suite on the embedded EVM (revm), plus restart and gas.
#![cfg(feature = "embedded-chain")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod chain_suite;

use std::sync::Arc;

use artha_core::{ChainJobStatus, JobId, ProofChain};
use artha_engine::chain::contracts::ArthaContracts;
use artha_engine::chain::embedded::EmbeddedEvm;
use chain_suite::*;

fn fund(evm: &EmbeddedEvm) {
    for a in dev_accounts().all() {
        evm.fund(a, FUNDING).unwrap();
    }
}

#[tokio::test]
async fn suite_runs_on_the_embedded_evm_and_survives_restart() {
    let tmp = tempfile::tempdir().unwrap();
    let evm = Arc::new(EmbeddedEvm::open(tmp.path()).unwrap());
    fund(&evm);
    let p = run(evm, dev_accounts()).await;
    p.worker.save(&tmp.path().join("deployment.json")).unwrap();
    let height = p.worker.backend().block_number();
    drop(p);
    // Reopen from disk: same height, same contracts, same job states.
    let evm = Arc::new(EmbeddedEvm::open(tmp.path()).unwrap());
    assert_eq!(evm.block_number(), height);
    let c = ArthaContracts::load(
        evm,
        &tmp.path().join("deployment.json"),
        dev_accounts().worker,
    )
    .unwrap()
    .unwrap();
    for (job, status) in [
        (SETTLED_JOB, ChainJobStatus::Finalized),
        (SLASHED_JOB, ChainJobStatus::Slashed),
        (FAILED_JOB, ChainJobStatus::Failed),
        (RECERTIFIED_JOB, ChainJobStatus::Failed),
    ] {
        assert_eq!(
            c.job_status(&JobId::from_bytes(job)).await.unwrap(),
            status,
            "{job:?}"
        );
    }
    assert!(c.node_eligible(&node()).await.unwrap(), "certified again");
}

#[tokio::test]
async fn job_life_gas_is_flat_in_steps() {
    let evm = Arc::new(EmbeddedEvm::in_memory());
    fund(&evm);
    let p = deploy(evm, dev_accounts()).await;
    let first = life_gas(&p, JobId::from_bytes([1; 16]), 1).await;
    let mut rows = Vec::new();
    for (i, steps) in [100u64, 10_000, 1_000_000].into_iter().enumerate() {
        let g = life_gas(&p, JobId::from_bytes([10 + i as u8; 16]), steps).await;
        println!(
            "steps {steps:>9}: submit {} assign {} commit {} finalize {} total {}",
            g[0], g[1], g[2], g[3], g[4]
        );
        rows.push(g[4]);
    }
    println!("first job: total {}", first[4]);
    assert!(first[4] < 400_000, "first job {first:?}");
    for t in &rows {
        assert!(*t < 400_000, "{rows:?}");
        assert!(t.abs_diff(rows[0]) <= 200, "flat in steps: {rows:?}");
    }
}
