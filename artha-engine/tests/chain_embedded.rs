//! The chain suite on the embedded EVM (revm), plus restart and gas.
#![cfg(feature = "embedded-chain")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod chain_suite;

use std::sync::Arc;

use alloy_primitives::{Address, B256, Bytes, U256, keccak256};
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
        (VALID_JOB, ChainJobStatus::Committed),
    ] {
        assert_eq!(
            c.job_status(&JobId::from_bytes(job)).await.unwrap(),
            status,
            "{job:?}"
        );
    }
    assert!(
        !c.node_eligible(&node()).await.unwrap(),
        "slashed for good, across a restart"
    );
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
    // Bounded, whatever the step count: since the spec CID, the manifest
    // CID and the audit seed are stored (three words more than before
    // issue 15), a life costs ~460 000 gas.
    assert!(first[4] < 500_000, "first job {first:?}");
    for t in &rows {
        assert!(*t < 500_000, "{rows:?}");
        assert!(t.abs_diff(rows[0]) <= 200, "flat in steps: {rows:?}");
    }
}

/// What a restart keeps: balances (accounts and the escrow contract), the
/// contracts' storage, receipts by hash, the height and the clock offset.
#[tokio::test]
async fn reopen_keeps_balances_storage_receipts_height_and_clock() {
    let tmp = tempfile::tempdir().unwrap();
    let evm = Arc::new(EmbeddedEvm::open(tmp.path()).unwrap());
    fund(&evm);
    // Deployed, the node registered by the worker and certified.
    let p = deploy(evm.clone(), dev_accounts()).await;
    let job = JobId::from_bytes([0x21; 16]);
    let r = p
        .submitter
        .submit_job(&submission(job, arth(5)))
        .await
        .unwrap();
    p.scheduler.assign(&job, &node()).await.unwrap();
    evm.advance_time(7_200).unwrap();
    let wall = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let hash = B256::from(*r.tx_hash.as_bytes());
    let receipt = evm.receipt(&hash).unwrap();
    let market = p.worker.deployment.market;
    let balances: Vec<U256> = [dev_accounts().submitter, dev_accounts().worker, market]
        .iter()
        .map(|a| evm.balance(*a).unwrap())
        .collect();
    let (height, last) = (evm.block_number(), evm.last_timestamp());
    p.worker.save(&tmp.path().join("deployment.json")).unwrap();
    drop(p);
    drop(evm);

    let evm = Arc::new(EmbeddedEvm::open(tmp.path()).unwrap());
    assert_eq!(evm.block_number(), height);
    assert_eq!(evm.last_timestamp(), last);
    assert!(evm.now() >= wall + 7_199, "the time offset survives");
    assert_eq!(evm.receipt(&hash).unwrap(), receipt);
    assert_eq!(receipt.block_number, r.block_number);
    assert!(evm.receipt(&B256::repeat_byte(7)).is_none());
    let c = ArthaContracts::load(
        evm.clone(),
        &tmp.path().join("deployment.json"),
        dev_accounts().submitter,
    )
    .unwrap()
    .unwrap();
    let again: Vec<U256> = [dev_accounts().submitter, dev_accounts().worker, market]
        .iter()
        .map(|a| evm.balance(*a).unwrap())
        .collect();
    assert_eq!(again, balances);
    assert_eq!(c.job_status(&job).await.unwrap(), ChainJobStatus::Assigned);
    assert_eq!(c.job_node(&job).await.unwrap(), Some(node()));
    assert_eq!(c.escrow_of(&job).await.unwrap().0, arth(5));
    // And it keeps going from there.
    let next = c
        .submit_job(&submission(JobId::from_bytes([0x22; 16]), arth(5)))
        .await
        .unwrap();
    assert_eq!(next.block_number, height + 1);
}

/// A chain database that is not one: `Corrupted`, naming the file.
#[test]
fn corrupt_database_is_reported() {
    let tmp = tempfile::tempdir().unwrap();
    let db = tmp.path().join("chain.db");
    std::fs::write(&db, b"{oops").unwrap();
    let e = EmbeddedEvm::open(tmp.path()).unwrap_err();
    assert_eq!(e.kind(), artha_core::ErrorKind::Corrupted, "{e}");
    assert_eq!(e.context_value("path"), Some(db.to_str().unwrap()));
    // A SQLite database, but not a chain.
    std::fs::remove_file(&db).unwrap();
    let conn = rusqlite::Connection::open(&db).unwrap();
    conn.execute_batch("CREATE TABLE other (x INTEGER);")
        .unwrap();
    drop(conn);
    let e = EmbeddedEvm::open(tmp.path()).unwrap_err();
    assert_eq!(e.kind(), artha_core::ErrorKind::Corrupted, "{e}");
    assert_eq!(e.context_value("path"), Some(db.to_str().unwrap()));
}

const CRASH_CHILD: &str = "ARTHA_TEST_CHAIN_CRASH_CHILD";
const TOTAL_WEI: u64 = 1_000_000_000;

fn alice() -> Address {
    addr(0xa1)
}

fn bob() -> Address {
    addr(0xb0)
}

/// The hash the embedded chain gives alice's `nonce`-th transfer of 1 wei
/// to bob (see the module docs of `embedded`).
fn transfer_hash(nonce: u64) -> B256 {
    let mut pre = b"artha-embedded-tx".to_vec();
    pre.extend_from_slice(&artha_engine::chain::embedded::CHAIN_ID.to_be_bytes());
    pre.extend_from_slice(alice().as_slice());
    pre.extend_from_slice(&nonce.to_be_bytes());
    pre.extend_from_slice(bob().as_slice());
    pre.extend_from_slice(&U256::from(1u64).to_be_bytes::<32>());
    keccak256(&pre)
}

/// Not a test on its own: the writer that `a_killed_writer_leaves_whole_transactions`
/// runs in a child process and kills. Does nothing unless told to.
#[test]
fn crash_child_writer() {
    let Ok(dir) = std::env::var(CRASH_CHILD) else {
        return;
    };
    let evm = EmbeddedEvm::open(std::path::Path::new(&dir)).unwrap();
    loop {
        evm.send(alice(), bob(), Bytes::new(), U256::from(1u64))
            .unwrap();
    }
}

/// A process killed (SIGKILL) while it mines transfers leaves every
/// transaction whole or absent: the height, both balances, the sender's
/// nonce and the receipts agree after every crash, and the chain goes on.
#[test]
fn a_killed_writer_leaves_whole_transactions() {
    let tmp = tempfile::tempdir().unwrap();
    EmbeddedEvm::open(tmp.path())
        .unwrap()
        .fund(alice(), U256::from(TOTAL_WEI))
        .unwrap();
    let exe = std::env::current_exe().unwrap();
    let mut last = 0;
    for round in 0..4u64 {
        let mut child = std::process::Command::new(&exe)
            .args(["--exact", "crash_child_writer", "--test-threads=1"])
            .env(CRASH_CHILD, tmp.path())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        // Let it mine a few blocks, then kill it at an arbitrary moment.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        while EmbeddedEvm::open(tmp.path()).unwrap().block_number() < last + 10 {
            assert!(std::time::Instant::now() < deadline, "the writer mines");
            assert!(child.try_wait().unwrap().is_none(), "the writer runs");
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        std::thread::sleep(std::time::Duration::from_millis(7 * round + 3));
        child.kill().unwrap();
        child.wait().unwrap();

        let evm = EmbeddedEvm::open(tmp.path()).unwrap();
        let n = evm.block_number();
        assert!(n >= last + 10, "round {round}: {n} blocks");
        assert_eq!(
            evm.balance(bob()).unwrap(),
            U256::from(n),
            "one wei a block"
        );
        assert_eq!(
            evm.balance(alice()).unwrap() + evm.balance(bob()).unwrap(),
            U256::from(TOTAL_WEI)
        );
        let r = evm.try_receipt(&transfer_hash(n - 1)).unwrap().unwrap();
        assert_eq!(r.block_number, n, "the last block's receipt is there");
        assert!(
            evm.try_receipt(&transfer_hash(n)).unwrap().is_none(),
            "and no receipt beyond it"
        );
        // The next transfer uses the next nonce.
        let r = evm
            .send(alice(), bob(), Bytes::new(), U256::from(1u64))
            .unwrap();
        assert_eq!((r.tx_hash, r.block_number), (transfer_hash(n), n + 1));
        last = n + 1;
    }
}

/// A deployment file naming contracts of another version (here: another
/// contract where ProofOfCompute should be) is refused when the chain
/// opens, naming the file, instead of failing call by call later.
#[tokio::test]
async fn an_older_deployment_is_refused_at_open() {
    let tmp = tempfile::tempdir().unwrap();
    let params = artha_engine::chain::contracts::Params::default();
    let setup = artha_engine::chain::setup::open_embedded(tmp.path(), "seed", params)
        .await
        .unwrap();
    let d = setup.deployment;
    drop(setup);
    let path = tmp.path().join("deployment.json");
    let text = std::fs::read_to_string(&path).unwrap();
    let proofs = format!("{:?}", d.proofs).to_lowercase();
    let market = format!("{:?}", d.market).to_lowercase();
    let lower = text.to_lowercase();
    assert!(lower.contains(&proofs), "{text}");
    std::fs::write(&path, lower.replace(&proofs, &market)).unwrap();
    let e = artha_engine::chain::setup::open_embedded(tmp.path(), "seed", params)
        .await
        .unwrap_err();
    assert_eq!(e.kind(), artha_core::ErrorKind::Conflict, "{e}");
    assert!(e.to_string().contains("older contract version"), "{e}");
    assert_eq!(
        e.context_value("path"),
        Some(path.display().to_string().as_str())
    );
}
