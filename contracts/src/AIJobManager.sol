// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {Roles} from "./Roles.sol";
import {DealMarket} from "./DealMarket.sol";
import {NodeCertRegistry} from "./NodeCertRegistry.sol";

/// @title AIJobManager
/// @notice Jobs on chain: submission with escrow, assignment to a node by
/// the scheduler, cancellation, and the status ProofOfCompute moves on.
/// Job ids are the engine's 16-byte job ids as `bytes32` (left-aligned).
contract AIJobManager is Roles {
    /// @notice May assign jobs to nodes.
    bytes32 public constant SCHEDULER = keccak256("SCHEDULER");
    /// @notice May move a job's status after assignment (ProofOfCompute).
    bytes32 public constant PROVER = keccak256("PROVER");

    /// @notice Where a job is.
    enum Status {
        None,
        Submitted,
        Assigned,
        Committed,
        Challenged,
        Finalized,
        Cancelled,
        Slashed
    }

    /// @notice A job as the chain knows it: two slots at submission, a third
    /// once assigned. The spec hash is only in the `JobSubmitted` event.
    struct Job {
        address submitter;
        Status status;
        uint64 maxGpuSeconds;
        uint128 rate; // wei per GPU-second
        bytes32 nodeId;
    }

    DealMarket public immutable market;
    NodeCertRegistry public immutable nodes;
    mapping(bytes32 jobId => Job) private _jobs;

    error JobExists(bytes32 jobId);
    error UnknownJob(bytes32 jobId);
    error Unfunded();
    error BudgetBelowEstimate(uint256 budget, uint256 estimate);
    error InvalidJob();
    error WrongStatus(bytes32 jobId, Status status);
    error NodeNotEligible(bytes32 nodeId);
    error NotSubmitter(bytes32 jobId, address caller);

    event JobSubmitted(
        bytes32 indexed jobId,
        address indexed submitter,
        bytes32 specHash,
        uint64 maxGpuSeconds,
        uint128 rate,
        uint256 budget
    );
    event JobAssigned(bytes32 indexed jobId, bytes32 indexed nodeId);
    event JobCancelled(bytes32 indexed jobId);
    event JobStatusChanged(bytes32 indexed jobId, Status status);

    constructor(address admin, DealMarket market_, NodeCertRegistry nodes_) Roles(admin) {
        market = market_;
        nodes = nodes_;
    }

    /// @notice Submits a job, locking `msg.value` as its escrow. The budget
    /// must cover `maxGpuSeconds × rate`.
    function submitJob(bytes32 jobId, bytes32 specHash, uint64 maxGpuSeconds, uint128 rate) external payable {
        if (msg.value == 0) revert Unfunded();
        if (jobId == bytes32(0) || maxGpuSeconds == 0) revert InvalidJob();
        if (_jobs[jobId].status != Status.None) revert JobExists(jobId);
        uint256 estimate = uint256(maxGpuSeconds) * rate;
        if (msg.value < estimate) revert BudgetBelowEstimate(msg.value, estimate);
        _jobs[jobId] = Job(msg.sender, Status.Submitted, maxGpuSeconds, rate, bytes32(0));
        market.lockEscrow{value: msg.value}(jobId, msg.sender);
        emit JobSubmitted(jobId, msg.sender, specHash, maxGpuSeconds, rate, msg.value);
    }

    /// @notice Assigns a submitted job to an eligible node (SCHEDULER role).
    function assign(bytes32 jobId, bytes32 nodeId) external onlyRole(SCHEDULER) {
        Job storage j = _existing(jobId);
        if (j.status != Status.Submitted) revert WrongStatus(jobId, j.status);
        if (!nodes.isEligible(nodeId)) revert NodeNotEligible(nodeId);
        j.nodeId = nodeId;
        j.status = Status.Assigned;
        emit JobAssigned(jobId, nodeId);
    }

    /// @notice Cancels a job not yet assigned and refunds its escrow (submitter only).
    function cancel(bytes32 jobId) external {
        Job storage j = _existing(jobId);
        if (j.submitter != msg.sender) revert NotSubmitter(jobId, msg.sender);
        if (j.status != Status.Submitted) revert WrongStatus(jobId, j.status);
        j.status = Status.Cancelled;
        emit JobCancelled(jobId);
        market.refund(jobId);
    }

    /// @notice Moves a job's status (PROVER role: ProofOfCompute).
    function setStatus(bytes32 jobId, Status status) external onlyRole(PROVER) {
        Job storage j = _existing(jobId);
        j.status = status;
        emit JobStatusChanged(jobId, status);
    }

    /// @notice A job's record.
    function getJob(bytes32 jobId) external view returns (Job memory) {
        return _existing(jobId);
    }

    function _existing(bytes32 jobId) private view returns (Job storage j) {
        j = _jobs[jobId];
        if (j.status == Status.None) revert UnknownJob(jobId);
    }
}
