//! Disputes without a trusted arbiter (DESIGN §6): a verifier that found
//! fraud posts a bonded challenge; a jury of staked verifiers drawn from
//! chain randomness replays the disputed window, votes by commit–reveal,
//! and the contract applies the majority (the minority and the silent lose
//! half their juror stake to the majority). No admin key decides.
//!
//! # Why one move instead of a bisection game
//!
//! A bisection game exists to find the first step two parties disagree on
//! when only the final state was committed. Here every step's record is
//! under the committed root, so the challenger finds the first differing
//! step off chain (it replayed the window) and proves the committed record
//! with its Merkle path in the challenge itself — what ⌈log₂ n⌉ rounds of
//! bisection would converge to, in one transaction, with no deadlines for a
//! party to run out (no griefing by silence). The step is then judged by
//! re-execution: by each juror replaying the window from its committed
//! checkpoint with the deterministic runtime, the same audit
//! [`Engine::verify`] runs.
//!
//! # Trust assumption
//!
//! A dispute is decided correctly when a majority of the drawn jury is
//! honest and can fetch the committed data. Jurors are drawn uniformly
//! from the staked pool with a block hash that did not exist when the
//! challenge was sent, so to control a verdict an attacker needs a
//! majority of a random jury — about that fraction of the pool's seats —
//! or to be the block producer of the draw block and grind it (costly on
//! a public chain; on the embedded development chain the engine produces
//! every block, which is why it is a development chain). A wrong majority
//! risks half of each wrong juror's stake when an honest majority forms in
//! the next dispute; an honest juror loses nothing.

use alloy_primitives::{Address, B256};
use artha_core::{Amount, Challenge, Error, ErrorKind, JobId, ProofChain, Result};
use serde::{Deserialize, Serialize};

use crate::Engine;
use crate::chain::contracts::{ChallengeInfo, Vote, revert_name};
use crate::chain::setup::{ChainSetup, DynContracts};
use crate::verify::{AuditOptions, AuditReport, Verdict};

/// The typed clients disputes need: the verifier's (it challenges, seals
/// seeds, draws juries, resolves) and the jurors' this process signs for.
#[derive(Clone)]
pub struct Jury {
    pub(crate) verifier: DynContracts,
    pub(crate) jurors: Vec<DynContracts>,
}

impl std::fmt::Debug for Jury {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Jury")
            .field("verifier", &self.verifier.address())
            .field(
                "jurors",
                &self
                    .jurors
                    .iter()
                    .map(DynContracts::address)
                    .collect::<Vec<_>>(),
            )
            .finish()
    }
}

impl Jury {
    /// The jury clients of a chain setup.
    pub(crate) fn of(setup: &ChainSetup) -> Option<Jury> {
        Some(Jury {
            verifier: setup.contracts(artha_core::Party::Verifier),
            jurors: setup
                .jurors
                .iter()
                .map(|a| setup.contracts_of(*a))
                .collect(),
        })
    }
}

/// How a dispute ended, as [`Engine::adjudicate`] reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DisputeReport {
    /// The challenge.
    pub challenge: ChallengeInfo,
    /// The jurors drawn.
    pub jury: Vec<String>,
    /// How each juror this engine holds voted.
    pub votes: Vec<(String, Vote)>,
    /// The job's status on chain after the resolution.
    pub job_status: artha_core::ChainJobStatus,
}

impl Engine {
    fn jury(&self) -> Result<&Jury> {
        self.parts.jury.as_ref().ok_or_else(|| {
            Error::new(
                ErrorKind::Unsupported,
                "this engine holds no typed chain clients for disputes (its chain was given as bare parties)",
            )
        })
    }

    /// Files a bonded challenge (the minimum bond) with the evidence of a
    /// fraudulent audit — the first differing step with its proof, or, for
    /// a fault in the committed data itself (a log that does not rebuild to
    /// the root, a checkpoint holding another step), a data challenge —
    /// and returns its id. `InvalidInput` naming `report` when the audit
    /// found no fraud.
    pub async fn challenge(&self, report: &AuditReport) -> Result<u64> {
        let jury = self.jury()?;
        if report.verdict != Verdict::Fraud {
            return Err(Error::invalid("report", "the audit found no fraud"));
        }
        let bond = Amount::from_wei(jury.verifier.params.min_bond);
        let Some(m) = report.evidence() else {
            jury.verifier.challenge_data(&report.job_id, bond).await?;
            let id = jury.verifier.challenge_count().await?;
            return u64::try_from(id)
                .map_err(|_| Error::new(ErrorKind::Corrupted, "challenge id above u64"));
        };
        self.parts
            .chain
            .challenge(&Challenge {
                job_id: report.job_id,
                committed: m.committed,
                proof: m.proof.clone(),
                replayed: m.replayed,
                bond,
            })
            .await?;
        let id = jury.verifier.challenge_count().await?;
        u64::try_from(id).map_err(|_| Error::new(ErrorKind::Corrupted, "challenge id above u64"))
    }

    /// Runs the jury of `challenge` as far as this engine can: draws it
    /// (after the draw block), has each drawn juror it signs for replay the
    /// disputed window independently and vote (commit, then reveal), and
    /// resolves once every juror revealed. Jurors join the pool first when
    /// it is too small (the development chain's [`dev_jurors`](crate::chain::setup::dev_jurors)).
    pub async fn adjudicate(&self, challenge: u64) -> Result<DisputeReport> {
        let jury = self.jury()?;
        let v = &jury.verifier;
        let info = v.challenge_info(challenge).await?;
        if !info.resolved {
            self.ensure_pool(jury).await?;
            if !info.drawn {
                self.draw(v, challenge).await?;
            }
        }
        let drawn = v.jury_of(challenge).await?;
        let mut votes = Vec::new();
        if !info.resolved {
            // A step challenge is judged on its window; a data challenge
            // (step 0) by the whole audit.
            let windows = match info.step {
                0 => None,
                s => Some(vec![self.disputed_window(&info.job, s).await?]),
            };
            let mine: Vec<&DynContracts> = jury
                .jurors
                .iter()
                .filter(|j| drawn.contains(&j.address()))
                .collect();
            let mut ballots = Vec::new();
            for j in &mine {
                // Each juror replays on its own (no shared verdict).
                let vote = match self
                    .verify(
                        &info.job,
                        &AuditOptions {
                            sample: None,
                            windows: windows.clone(),
                        },
                    )
                    .await
                {
                    Ok(r) => match r.verdict {
                        Verdict::Fraud => Vote::Fraud,
                        Verdict::Valid => Vote::Valid,
                        Verdict::Unverifiable => Vote::Unavailable,
                    },
                    Err(_) => Vote::Unavailable,
                };
                let salt = vote_salt()?;
                j.commit_vote(challenge, vote, salt).await?;
                ballots.push((*j, vote, salt));
            }
            for (j, vote, salt) in &ballots {
                j.reveal_vote(challenge, *vote, *salt).await?;
                votes.push((j.address().to_string(), *vote));
            }
            match v.resolve(challenge).await {
                Ok(_) => {}
                // Jurors this engine does not hold have yet to vote: the
                // challenge resolves after the reveal deadline.
                Err(e) if revert_name(&e) == Some("VotingOpen") => {}
                Err(e) => return Err(e),
            }
        }
        Ok(DisputeReport {
            challenge: v.challenge_info(challenge).await?,
            jury: drawn.iter().map(Address::to_string).collect(),
            votes,
            job_status: self.parts.chain.job_status(&info.job).await?,
        })
    }

    /// Draws the jury, mining a block first on a development chain when
    /// the draw block does not exist yet.
    async fn draw(&self, v: &DynContracts, challenge: u64) -> Result<()> {
        for _ in 0..3 {
            match v.draw_jury(challenge).await {
                Ok(_) => return Ok(()),
                Err(e) if revert_name(&e) == Some("JuryNotReady") => {
                    self.parts.chain.advance_time(0).await?;
                }
                Err(e) => return Err(e),
            }
        }
        Err(Error::new(
            ErrorKind::Conflict,
            "the jury cannot be drawn yet: its draw block is not mined",
        )
        .with_context("challenge_id", challenge.to_string()))
    }

    /// Has this engine's jurors join the pool until it can seat a jury
    /// (at least `jury_size + 2`: the challenger and the node's operator
    /// are never drawn).
    async fn ensure_pool(&self, jury: &Jury) -> Result<()> {
        let stake = Amount::from_wei(jury.verifier.params.juror_stake);
        for j in &jury.jurors {
            if j.juror_stake_of(j.address()).await?.wei() == 0 {
                match j.join_jury(stake).await {
                    Ok(_) => {}
                    Err(e) if revert_name(&e) == Some("AlreadyJuror") => {}
                    Err(e) => return Err(e),
                }
            }
        }
        Ok(())
    }

    /// The window holding committed step `step` of `job`.
    async fn disputed_window(&self, job: &JobId, step: u64) -> Result<u64> {
        let c = self.parts.chain.commitment(job).await?.ok_or_else(|| {
            Error::new(ErrorKind::NotFound, "the job has no commitment on chain")
                .with_context("job_id", job.to_string())
        })?;
        if step == 0 || step > c.steps {
            return Err(Error::invalid(
                "step",
                format!("step {step} of {}", c.steps),
            ));
        }
        // Committed steps count from 1 (a resumed run's too).
        Ok((step - 1) / u64::from(c.window.max(1)))
    }
}

/// A vote's salt: it hides the vote until the reveal, so it must be
/// unpredictable — no randomness, no vote.
fn vote_salt() -> Result<B256> {
    let mut b = [0u8; 32];
    getrandom::fill(&mut b).map_err(|e| {
        Error::new(
            ErrorKind::Internal,
            format!("no randomness for a vote salt: {e}"),
        )
    })?;
    Ok(B256::from(b))
}

/// What `arthai verify` (and `POST /verify/{job_id}`) asks for.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct VerifyRequest {
    /// Windows to draw from the audit seed (default
    /// [`DEFAULT_SAMPLE`](crate::verify::DEFAULT_SAMPLE)).
    pub sample: Option<u64>,
    /// Exactly these windows.
    pub windows: Option<Vec<u64>>,
    /// Every window.
    pub all: bool,
    /// On fraud with a disputed step: challenge it and run this engine's
    /// jurors.
    pub challenge: bool,
}

/// An audit and, when asked and found, the dispute it opened.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VerifyOutcome {
    /// The audit.
    pub audit: AuditReport,
    /// The dispute, when one was opened.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dispute: Option<DisputeReport>,
}

impl Engine {
    /// Audits `job` as `req` says and, on fraud with a disputed step and
    /// `req.challenge`, challenges it and adjudicates with this engine's
    /// jurors. `InvalidInput` naming the field for contradictory options.
    pub async fn verify_job(&self, job: &JobId, req: &VerifyRequest) -> Result<VerifyOutcome> {
        let opts = match (req.all, &req.windows, req.sample) {
            (true, Some(_), _) | (true, _, Some(_)) | (false, Some(_), Some(_)) => {
                return Err(Error::invalid(
                    "sample",
                    "give one of `sample`, `windows` and `all`",
                ));
            }
            (true, None, None) => AuditOptions {
                sample: None,
                windows: None,
            },
            (false, Some(w), None) => {
                if w.is_empty() || w.len() > 100_000 {
                    return Err(Error::invalid("windows", "give 1 to 100 000 windows"));
                }
                AuditOptions {
                    sample: None,
                    windows: Some(w.clone()),
                }
            }
            (false, None, s) => {
                if s == Some(0) {
                    return Err(Error::invalid("sample", "must be ≥ 1"));
                }
                AuditOptions {
                    sample: Some(s.unwrap_or(crate::verify::DEFAULT_SAMPLE)),
                    windows: None,
                }
            }
        };
        let audit = self.verify(job, &opts).await?;
        let dispute = if req.challenge && audit.verdict == Verdict::Fraud {
            let id = self.challenge(&audit).await?;
            Some(self.adjudicate(id).await?)
        } else {
            None
        };
        Ok(VerifyOutcome { audit, dispute })
    }
}
