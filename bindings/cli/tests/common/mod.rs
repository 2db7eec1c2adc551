//! Checks shared by the end-to-end suites.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;

use artha_core::JobPhase;
use artha_core::{Amount, Escrow, JobId, ProofChain};
use artha_engine::Engine;

/// Every artifact is retrievable and verifies; every receipt is a mined
/// transaction at the block recorded; the job's escrow is closed with
/// nothing left in it. (Exact balances are the caller's to check: they
/// depend on what gas costs on the chain at hand.)
pub(crate) async fn check_settled_job(e: &Engine, job: &JobId, tmp: &Path) {
    let r = e.record(job).unwrap();
    assert_eq!(r.phase, JobPhase::Settled, "{r:?}");
    for (i, a) in r.artifacts.iter().enumerate() {
        let dest = tmp.join(format!("artifact-{i}"));
        e.store().get(&a.uri.parse().unwrap(), &dest).await.unwrap();
        assert!(dest.exists(), "{a:?}");
    }
    assert!(e.store().verify().await.unwrap().is_ok());
    for x in &r.receipts {
        let mined = e.chain().receipt(&x.receipt.tx_hash).await.unwrap();
        let mined = mined.unwrap_or_else(|| panic!("{} not on chain", x.action));
        assert_eq!(mined.block_number, x.receipt.block_number, "{}", x.action);
    }
    let Escrow { held, closed } = e.chain().escrow(job).await.unwrap();
    assert_eq!(held, Amount::ZERO);
    assert!(closed);
    assert!(!outbox_mentions(e, job), "a settled job leaves the outbox");
}

/// Whether the engine's chain outbox holds an entry of `job`.
pub(crate) fn outbox_mentions(e: &Engine, job: &JobId) -> bool {
    let dir = e.home().join("chain");
    std::fs::read_dir(&dir).unwrap().any(|f| {
        let f = f.unwrap();
        let name = f.file_name().to_string_lossy().into_owned();
        name.starts_with("outbox-")
            && std::fs::read_to_string(f.path())
                .unwrap()
                .contains(&job.to_string())
    })
}

/// Waits until the home's first job run has reported `steps` steps while
/// `child` (the `arthai` driving it) still runs; returns the job.
pub(crate) fn wait_for_steps(home: &Path, steps: usize, child: &mut std::process::Child) -> JobId {
    let runs = home.join("jobs").join("run");
    loop {
        std::thread::sleep(std::time::Duration::from_millis(20));
        let Some(dir) = std::fs::read_dir(&runs)
            .ok()
            .and_then(|mut d| d.next())
            .and_then(|d| d.ok())
        else {
            continue;
        };
        let events =
            std::fs::read_to_string(dir.path().join("artha/events.jsonl")).unwrap_or_default();
        if events.matches("\"event\":\"step\"").count() >= steps {
            return dir.file_name().to_str().unwrap().parse().unwrap();
        }
        assert!(child.try_wait().unwrap().is_none(), "finished too soon");
    }
}
