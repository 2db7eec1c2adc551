//! The chain suite on the embedded EVM (revm), plus restart and gas.
#![cfg(feature = "embedded-chain")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod chain_suite;

use std::sync::Arc;

use alloy_primitives::U256;
use artha_core::{ChainJobStatus, JobId, ProofChain};
use artha_engine::chain::contracts::{Accounts, ArthaContracts};
use artha_engine::chain::embedded::EmbeddedEvm;
use chain_suite::*;

fn accounts() -> Accounts {
    Accounts {
        admin: addr(0xad),
        operator: addr(0x0b),
        submitter: addr(0x5b),
    }
}

fn fund(evm: &EmbeddedEvm) {
    for a in [accounts().admin, accounts().operator, accounts().submitter] {
        evm.fund(
            a,
            U256::from(1_000u64) * U256::from(10u64).pow(U256::from(18u64)),
        )
        .unwrap();
    }
}

#[tokio::test]
async fn suite_runs_on_the_embedded_evm_and_survives_restart() {
    let tmp = tempfile::tempdir().unwrap();
    let evm = Arc::new(EmbeddedEvm::open(tmp.path()).unwrap());
    fund(&evm);
    let c = run(evm, accounts()).await;
    c.save(&tmp.path().join("deployment.json")).unwrap();
    let height = c.backend().block_number();
    drop(c);
    // Reopen from disk: same height, same contracts, same job states.
    let evm = Arc::new(EmbeddedEvm::open(tmp.path()).unwrap());
    assert_eq!(evm.block_number(), height);
    let c = ArthaContracts::load(evm, &tmp.path().join("deployment.json"))
        .unwrap()
        .unwrap();
    assert_eq!(
        c.job_status(&JobId::from_bytes([7; 16])).await.unwrap(),
        ChainJobStatus::Finalized
    );
    assert_eq!(
        c.job_status(&JobId::from_bytes([8; 16])).await.unwrap(),
        ChainJobStatus::Slashed
    );
}

#[tokio::test]
async fn job_life_gas_is_flat_in_steps() {
    let evm = Arc::new(EmbeddedEvm::in_memory());
    fund(&evm);
    let c = ArthaContracts::deploy(evm, accounts(), Default::default())
        .await
        .unwrap();
    c.register_node(
        &node(),
        8,
        81_920,
        artha_core::Amount::from_wei(RATE),
        "local",
        &["mlp"],
        arth(1),
    )
    .await
    .unwrap();
    let first = life_gas(&c, JobId::from_bytes([1; 16]), 1).await;
    let mut rows = Vec::new();
    for (i, steps) in [100u64, 10_000, 1_000_000].into_iter().enumerate() {
        let g = life_gas(&c, JobId::from_bytes([10 + i as u8; 16]), steps).await;
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
