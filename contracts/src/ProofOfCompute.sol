// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {Roles, Guarded} from "./Roles.sol";
import {ArthaMerkle} from "./ArthaMerkle.sol";
import {AIJobManager} from "./AIJobManager.sol";
import {DealMarket} from "./DealMarket.sol";
import {NodeCertRegistry} from "./NodeCertRegistry.sol";

/// @title ProofOfCompute
/// @notice Commitments of work, challenges inside a challenge period, and
/// settlement. A job commits ONE root (over its window roots), whatever its
/// step count, so a job's gas does not grow with its length. Anyone may
/// challenge a committed step by showing it is in the root and posting a
/// bond with a replayed record that differs; an arbiter (who replays the
/// window off chain) resolves. After the period, with no open challenge,
/// `finalize` pays `gpuSeconds × rate` to the node and refunds the rest.
contract ProofOfCompute is Roles, Guarded {
    /// @notice Resolves challenges.
    bytes32 public constant ARBITER = keccak256("ARBITER");

    /// @notice A job's commitment (two storage slots). The final weights and
    /// manifest CID are in the `Committed` event.
    struct Commitment {
        bytes32 jobRoot;
        uint64 steps;
        uint64 gpuSeconds;
        uint40 committedAt;
        uint32 windows;
        uint32 window;
        uint16 openChallenges;
    }

    /// @notice A challenge (two storage slots).
    struct Challenge {
        bytes32 jobId;
        address challenger;
        uint96 bond;
        uint64 step;
        bool resolved;
    }

    AIJobManager public immutable manager;
    NodeCertRegistry public immutable nodes;
    DealMarket public immutable market;
    /// @notice Seconds after a commitment during which it can be challenged.
    uint64 public immutable challengePeriod;
    /// @notice Least bond of a challenge.
    uint256 public immutable minBond;
    /// @notice Stake taken from a node whose commitment was proven wrong.
    uint256 public immutable slashAmount;

    mapping(bytes32 jobId => Commitment) private _commitments;
    mapping(uint256 challengeId => Challenge) private _challenges;
    uint256 public challengeCount;

    /// @notice Only the assigned node's operator may commit.
    error NotAssignedNode(bytes32 jobId, address caller);
    /// @notice The job is not in a status that allows this.
    error WrongStatus(bytes32 jobId, AIJobManager.Status status);
    /// @notice The job already has its (one) commitment.
    error AlreadyCommitted(bytes32 jobId);
    /// @notice Zero job root, zero window size or window count, or a window
    /// count that does not match ceil(steps / window).
    error MalformedRoot();
    /// @notice The node billed more GPU-seconds than the job allows.
    error GpuSecondsOverMax(uint64 gpuSeconds, uint64 maxGpuSeconds);
    /// @notice The job has no commitment.
    error NotCommitted(bytes32 jobId);
    /// @notice The challenge period ended at `closedAt`.
    error ChallengeWindowClosed(uint256 closedAt);
    /// @notice The challenge period runs until `endsAt`.
    error ChallengePeriodActive(uint256 endsAt);
    /// @notice The bond sent is below `minBond`.
    error BondTooLow(uint256 sent, uint256 required);
    /// @notice The bond sent is above 2^96 wei.
    error BondTooHigh(uint256 sent);
    /// @notice A Merkle path does not lead to the committed root, or the
    /// window index is out of range.
    error InvalidProof();
    /// @notice The replayed record is for another step than the committed one.
    error StepMismatch(uint64 committed, uint64 replayed);
    /// @notice The replayed record equals the committed one.
    error NoDifference();
    /// @notice No challenge `challengeId`.
    error UnknownChallenge(uint256 challengeId);
    /// @notice The challenge was already resolved.
    error AlreadyResolved(uint256 challengeId);
    /// @notice The job has a challenge awaiting resolution.
    error OpenChallenge(bytes32 jobId);
    /// @notice The job was already finalized.
    error AlreadyFinalized(bytes32 jobId);

    /// @notice The assigned node committed a job's results: `windows` window
    /// roots of `window` steps under `jobRoot`, `steps` steps in all,
    /// `gpuSeconds` measured, the final weights' and proof manifest's CIDs.
    event Committed(
        bytes32 indexed jobId,
        bytes32 indexed nodeId,
        bytes32 jobRoot,
        uint32 window,
        uint32 windows,
        uint64 steps,
        uint64 gpuSeconds,
        bytes32 finalWeights,
        bytes32 manifestCid
    );
    /// @notice A committed step was challenged: the committed record (proven
    /// under the job root at `windowIndex`/`stepIndex`) and the challenger's
    /// replayed record for the same step, which differs.
    event Challenged(
        uint256 indexed challengeId,
        bytes32 indexed jobId,
        address indexed challenger,
        uint64 step,
        uint256 bond,
        uint256 windowIndex,
        uint256 stepIndex,
        bytes committedRecord,
        bytes replayedRecord
    );
    /// @notice The arbiter resolved a challenge. Upheld: `slashed` wei of
    /// stake went to the challenger with the bond, the escrow to the
    /// submitter. Rejected: the bond went to the node's operator.
    event ChallengeResolved(
        uint256 indexed challengeId, bytes32 indexed jobId, bool upheld, uint256 slashed, address bondTo, uint256 bond
    );
    /// @notice A job was paid: `payout` = `gpuSeconds` × rate to `payee`
    /// (the node's operator); the rest of the escrow went back to the submitter.
    event Finalized(bytes32 indexed jobId, bytes32 indexed nodeId, address payee, uint256 payout, uint64 gpuSeconds);

    constructor(
        address admin,
        AIJobManager manager_,
        NodeCertRegistry nodes_,
        DealMarket market_,
        uint64 challengePeriod_,
        uint256 minBond_,
        uint256 slashAmount_
    ) Roles(admin) {
        manager = manager_;
        nodes = nodes_;
        market = market_;
        challengePeriod = challengePeriod_;
        minBond = minBond_;
        slashAmount = slashAmount_;
    }

    /// @notice Commits a job's results: the job's completion on chain. Only
    /// the assigned node's operator, once per job, whatever the step count.
    /// @param jobRoot Merkle root over the window roots (ArthaMerkle tree).
    /// @param window steps per window (the last window may be shorter).
    /// @param windows number of windows = ceil(steps / window).
    /// @param steps number of training steps (step leaves).
    /// @param gpuSeconds GPU-seconds measured by the engine (≤ the job's max).
    /// @param finalWeights BLAKE3 CID of the final weights (event only).
    /// @param manifestCid BLAKE3 CID of the proof manifest (event only).
    function commit(
        bytes32 jobId,
        bytes32 jobRoot,
        uint32 window,
        uint32 windows,
        uint64 steps,
        uint64 gpuSeconds,
        bytes32 finalWeights,
        bytes32 manifestCid
    ) external {
        AIJobManager.Job memory j = manager.getJob(jobId);
        if (_commitments[jobId].jobRoot != bytes32(0)) revert AlreadyCommitted(jobId);
        if (j.status != AIJobManager.Status.Assigned) revert WrongStatus(jobId, j.status);
        if (nodes.operatorOf(j.nodeId) != msg.sender) revert NotAssignedNode(jobId, msg.sender);
        if (jobRoot == bytes32(0) || window == 0 || windows == 0) revert MalformedRoot();
        if (uint256(windows) != (uint256(steps) + window - 1) / window) revert MalformedRoot();
        if (gpuSeconds > j.maxGpuSeconds) revert GpuSecondsOverMax(gpuSeconds, j.maxGpuSeconds);
        _commitments[jobId] = Commitment(jobRoot, steps, gpuSeconds, uint40(block.timestamp), windows, window, 0);
        manager.setStatus(jobId, AIJobManager.Status.Committed);
        emit Committed(jobId, j.nodeId, jobRoot, window, windows, steps, gpuSeconds, finalWeights, manifestCid);
    }

    /// @notice What a challenger claims: where the disputed step sits under
    /// the job root, the committed record, and the replayed record.
    struct StepClaim {
        uint256 windowIndex;
        bytes32 windowRoot;
        bytes32[] windowProof;
        uint256 stepIndex;
        bytes committedRecord;
        bytes32[] stepProof;
        bytes replayedRecord;
    }

    /// @notice Challenges a committed step (anyone, with a bond of at least
    /// `minBond`, before `committedAt + challengePeriod`): proves
    /// `claim.committedRecord` is under the job root (window proof, then step
    /// proof) and shows a replayed record of the same step that differs.
    /// The arbiter then replays the window off chain and calls `resolve`.
    /// @return challengeId sequential from 1.
    function challenge(bytes32 jobId, StepClaim calldata claim) external payable returns (uint256 challengeId) {
        Commitment storage c = _commitments[jobId];
        if (c.jobRoot == bytes32(0)) revert NotCommitted(jobId);
        uint256 closes = uint256(c.committedAt) + challengePeriod;
        if (block.timestamp >= closes) revert ChallengeWindowClosed(closes);
        AIJobManager.Status status = manager.getJob(jobId).status;
        if (status != AIJobManager.Status.Committed && status != AIJobManager.Status.Challenged) {
            revert WrongStatus(jobId, status);
        }
        if (msg.value < minBond) revert BondTooLow(msg.value, minBond);
        if (msg.value > type(uint96).max) revert BondTooHigh(msg.value);
        uint64 step = _checkClaim(c, claim);
        challengeId = ++challengeCount;
        _challenges[challengeId] = Challenge(jobId, msg.sender, uint96(msg.value), step, false);
        c.openChallenges += 1;
        if (status != AIJobManager.Status.Challenged) manager.setStatus(jobId, AIJobManager.Status.Challenged);
        emit Challenged(
            challengeId,
            jobId,
            msg.sender,
            step,
            msg.value,
            claim.windowIndex,
            claim.stepIndex,
            claim.committedRecord,
            claim.replayedRecord
        );
    }

    /// @notice Checks a claim against a commitment; returns the step number.
    function _checkClaim(Commitment storage c, StepClaim calldata claim) private view returns (uint64 step) {
        if (claim.windowIndex >= c.windows) revert InvalidProof();
        if (!ArthaMerkle.verify(c.jobRoot, claim.windowRoot, claim.windowIndex, c.windows, claim.windowProof)) {
            revert InvalidProof();
        }
        uint256 first = claim.windowIndex * c.window;
        uint256 leaves = c.steps - first < c.window ? c.steps - first : c.window;
        bytes32 leaf = ArthaMerkle.leafHash(claim.committedRecord);
        if (!ArthaMerkle.verify(claim.windowRoot, leaf, claim.stepIndex, leaves, claim.stepProof)) {
            revert InvalidProof();
        }
        step = ArthaMerkle.stepNumber(claim.committedRecord);
        uint64 replayedStep = ArthaMerkle.stepNumber(claim.replayedRecord);
        if (step != replayedStep) revert StepMismatch(step, replayedStep);
        if (keccak256(claim.committedRecord) == keccak256(claim.replayedRecord)) revert NoDifference();
    }

    /// @notice Resolves a challenge (ARBITER role, after replaying the window).
    /// Upheld: `min(slashAmount, stake)` of the node's stake goes to the
    /// challenger, the node is decertified and loses 10 reputation, the
    /// submitter is refunded in full, the bond returned, and the job ends
    /// Slashed (later challenges of it only get their bonds back when
    /// upheld). Rejected: the bond goes to the node's operator, and the job
    /// returns to Committed once no challenge is open.
    function resolve(uint256 challengeId, bool upheld) external onlyRole(ARBITER) nonReentrant {
        Challenge storage ch = _challenges[challengeId];
        if (ch.challenger == address(0)) revert UnknownChallenge(challengeId);
        if (ch.resolved) revert AlreadyResolved(challengeId);
        ch.resolved = true;
        bytes32 jobId = ch.jobId;
        Commitment storage c = _commitments[jobId];
        c.openChallenges -= 1;
        AIJobManager.Job memory j = manager.getJob(jobId);
        uint256 slashed = 0;
        if (upheld) {
            if (j.status != AIJobManager.Status.Slashed) {
                uint256 stake = nodes.getNode(j.nodeId).stake;
                slashed = stake < slashAmount ? stake : slashAmount;
                manager.setStatus(jobId, AIJobManager.Status.Slashed);
                nodes.adjustReputation(j.nodeId, -10);
                market.refund(jobId);
                // Also decertifies the node, even when no stake is left to take.
                nodes.slash(j.nodeId, slashed, ch.challenger);
            }
            emit ChallengeResolved(challengeId, jobId, true, slashed, ch.challenger, ch.bond);
            _pay(ch.challenger, ch.bond);
        } else {
            if (c.openChallenges == 0 && j.status == AIJobManager.Status.Challenged) {
                manager.setStatus(jobId, AIJobManager.Status.Committed);
            }
            address operator = nodes.operatorOf(j.nodeId);
            emit ChallengeResolved(challengeId, jobId, false, 0, operator, ch.bond);
            _pay(operator, ch.bond);
        }
    }

    /// @notice Pays out a job whose challenge period passed with no open or
    /// upheld challenge (anyone may call): `gpuSeconds × rate` (the rate
    /// fixed at submission) to the node's operator, the rest of the escrow
    /// back to the submitter; the node gains 1 reputation.
    function finalize(bytes32 jobId) external {
        Commitment storage c = _commitments[jobId];
        if (c.jobRoot == bytes32(0)) revert NotCommitted(jobId);
        AIJobManager.Job memory j = manager.getJob(jobId);
        if (j.status == AIJobManager.Status.Finalized) revert AlreadyFinalized(jobId);
        if (j.status == AIJobManager.Status.Challenged) revert OpenChallenge(jobId);
        if (j.status != AIJobManager.Status.Committed) revert WrongStatus(jobId, j.status);
        uint256 ends = uint256(c.committedAt) + challengePeriod;
        if (block.timestamp < ends) revert ChallengePeriodActive(ends);
        uint256 payout = uint256(c.gpuSeconds) * j.rate;
        address payee = nodes.operatorOf(j.nodeId);
        manager.setStatus(jobId, AIJobManager.Status.Finalized);
        nodes.adjustReputation(j.nodeId, 1);
        market.settle(jobId, payee, payout);
        emit Finalized(jobId, j.nodeId, payee, payout, c.gpuSeconds);
    }

    /// @notice A job's commitment (zero root if none).
    function commitmentOf(bytes32 jobId) external view returns (Commitment memory) {
        return _commitments[jobId];
    }

    /// @notice A challenge (zero challenger if none).
    function getChallenge(uint256 challengeId) external view returns (Challenge memory) {
        return _challenges[challengeId];
    }
}
