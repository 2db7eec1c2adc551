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

    /// @notice A challenge.
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

    error NotAssignedNode(bytes32 jobId, address caller);
    error WrongStatus(bytes32 jobId, AIJobManager.Status status);
    error AlreadyCommitted(bytes32 jobId);
    error MalformedRoot();
    error GpuSecondsOverMax(uint64 gpuSeconds, uint64 maxGpuSeconds);
    error NotCommitted(bytes32 jobId);
    error ChallengeWindowClosed(uint256 closedAt);
    error ChallengePeriodActive(uint256 endsAt);
    error BondTooLow(uint256 sent, uint256 required);
    error InvalidProof();
    error StepMismatch(uint64 committed, uint64 replayed);
    error NoDifference();
    error UnknownChallenge(uint256 challengeId);
    error ChallengeResolved(uint256 challengeId);
    error OpenChallenge(bytes32 jobId);
    error AlreadyFinalized(bytes32 jobId);

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
    event Challenged(
        uint256 indexed challengeId, bytes32 indexed jobId, address indexed challenger, uint64 step, uint256 bond
    );
    event ChallengeResolvedEvent(uint256 indexed challengeId, bytes32 indexed jobId, bool upheld, uint256 slashed);
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

    /// @notice Commits a job's results; only the assigned node's operator.
    /// `window` steps per window, `windows` window roots under `jobRoot`.
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

    /// @notice Challenges a committed step: proves `claim.committedRecord` is
    /// under the job root and posts a bond with the differing replayed
    /// record of the same step.
    function challenge(bytes32 jobId, StepClaim calldata claim) external payable returns (uint256 challengeId) {
        Commitment storage c = _commitments[jobId];
        if (c.jobRoot == bytes32(0)) revert NotCommitted(jobId);
        uint256 closes = uint256(c.committedAt) + challengePeriod;
        if (block.timestamp >= closes) revert ChallengeWindowClosed(closes);
        if (msg.value < minBond) revert BondTooLow(msg.value, minBond);
        uint64 step = _checkClaim(c, claim);
        challengeId = ++challengeCount;
        _challenges[challengeId] = Challenge(jobId, msg.sender, uint96(msg.value), step, false);
        c.openChallenges += 1;
        manager.setStatus(jobId, AIJobManager.Status.Challenged);
        emit Challenged(challengeId, jobId, msg.sender, step, msg.value);
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
        if (!ArthaMerkle.verify(claim.windowRoot, leaf, claim.stepIndex, leaves, claim.stepProof)) revert InvalidProof();
        step = ArthaMerkle.stepNumber(claim.committedRecord);
        uint64 replayedStep = ArthaMerkle.stepNumber(claim.replayedRecord);
        if (step != replayedStep) revert StepMismatch(step, replayedStep);
        if (keccak256(claim.committedRecord) == keccak256(claim.replayedRecord)) revert NoDifference();
    }

    /// @notice Resolves a challenge (ARBITER role). Upheld: the node is
    /// slashed (to the challenger), the submitter refunded in full, the bond
    /// returned. Rejected: the bond goes to the node's operator.
    function resolve(uint256 challengeId, bool upheld) external onlyRole(ARBITER) nonReentrant {
        Challenge storage ch = _challenges[challengeId];
        if (ch.challenger == address(0)) revert UnknownChallenge(challengeId);
        if (ch.resolved) revert ChallengeResolved(challengeId);
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
                if (slashed > 0) nodes.slash(j.nodeId, slashed, ch.challenger);
            }
            emit ChallengeResolvedEvent(challengeId, jobId, true, slashed);
            _send(ch.challenger, ch.bond);
        } else {
            if (c.openChallenges == 0 && j.status == AIJobManager.Status.Challenged) {
                manager.setStatus(jobId, AIJobManager.Status.Committed);
            }
            emit ChallengeResolvedEvent(challengeId, jobId, false, 0);
            _send(nodes.operatorOf(j.nodeId), ch.bond);
        }
    }

    /// @notice Pays out a job whose challenge period passed with no open or
    /// upheld challenge: `gpuSeconds × rate` to the node's operator, the rest
    /// of the escrow back to the submitter.
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

    /// @notice A challenge.
    function getChallenge(uint256 challengeId) external view returns (Challenge memory) {
        return _challenges[challengeId];
    }
}
