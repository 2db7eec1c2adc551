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
#[allow(dead_code)]
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
#[allow(dead_code)]
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
#[allow(dead_code)]
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

/// anvil's development keys (its well-known test mnemonic), in the order
/// it prints them at start-up (`tests/lib/anvil.sh` starts it).
#[allow(dead_code)]
pub(crate) const ANVIL_KEYS: [&str; 10] = [
    "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80",
    "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d",
    "0x5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a",
    "0x7c852118294e51e653712a81e05800f419141751be58f605c371e15141b007a6",
    "0x47e179ec197488593b187f80a00eb0da91f1b9d0b13f8733639f19c30a34926a",
    "0x8b3a350cf5c34c9194ca85829a2df0ec3153be0318b5e2d3348e872092edffba",
    "0x92db14e403b83dfe3df233f83dfa3a0d7096f21ca9b0d6d6b8d88b2b4ec1564e",
    "0x4bbbf85ce3377467afe5d46f804f221813b2bb87f24d81f60f1fcdbf7cbf4356",
    "0xdbda1821b80551c9d65939329250298aa3472ba22feea921c0cf5d620ea67b97",
    "0x2a871d0798f97d79848a013d4936a73bf4cc922c825d33c1cf7073dff6d409c6",
];

/// The party keys of anvil's keys `first..first + 5`: admin (when
/// `admin`), scheduler, worker, submitter, verifier.
#[allow(dead_code)]
pub(crate) fn anvil_party_keys(first: usize, admin: bool) -> artha_engine::chain::setup::PartyKeys {
    let k = |i: usize| ANVIL_KEYS[first + i].to_string();
    artha_engine::chain::setup::PartyKeys {
        admin: admin.then(|| k(0)),
        scheduler: k(1),
        worker: k(2),
        submitter: k(3),
        verifier: k(4),
    }
}

/// Writes `keys` as an `--rpc-keys-file` (`role=key` lines, mode 0600).
#[allow(dead_code)]
pub(crate) fn write_keys_file(
    path: &Path,
    keys: &artha_engine::chain::setup::PartyKeys,
) -> std::path::PathBuf {
    let mut text = String::from("# arthai --rpc-keys-file: one key per party\n");
    for (role, key) in keys.named() {
        text.push_str(&format!("{role}={key}\n"));
    }
    std::fs::write(path, text).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    path.to_path_buf()
}

/// Waits until `job` has ended and the engine has closed it; its record.
pub(crate) async fn ended(e: &Engine, job: &JobId) -> artha_core::JobRecord {
    e.job(job)
        .unwrap()
        .wait_for(JobPhase::is_terminal)
        .await
        .unwrap()
}

/// An engine at `home` that runs native jobs with `arthai runtime` (this
/// build's), without Docker.
#[allow(dead_code)]
pub(crate) async fn engine(home: &Path) -> Engine {
    Engine::builder()
        .home(home)
        .native_runtime(env!("CARGO_BIN_EXE_arthai"), &["runtime"])
        .docker(artha_engine::engine::DockerChoice::Off)
        .build()
        .await
        .unwrap()
}
