// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {Roles} from "./Roles.sol";
import {DealMarket} from "./DealMarket.sol";
import {NodeCertRegistry} from "./NodeCertRegistry.sol";

/// @title AIJobManager
/// @notice Jobs on chain: submission with escrow, assignment to a node by
/// the scheduler, cancellation or failure with a full refund, and the
/// status ProofOfCompute moves on.
///
/// Job ids are chosen by the submitter: the engine's 16-byte job ids (UUID
/// v7) as `bytes32`, left-aligned. That lets the engine know a job's id
/// before its transaction is mined (its outbox can then retry a
/// submission without duplicating it: a second one reverts `JobExists`).
///
/// Completion is `ProofOfCompute.commit` by the assigned node's operator
/// (status Committed): the result and the proof are one transaction.
/// Status machine:
///   Submitted → Assigned → Committed ⇄ Challenged → Finalized | Slashed | Voided
///   Submitted → Cancelled (submitter);  Assigned → Failed (node or scheduler)
///
/// Payment is per verified step: the submitter fixes `pricePerStep` and the
/// step count the spec implies (`maxSteps`); the node is paid
/// `steps × pricePerStep` for the steps it committed (never more than
/// `maxSteps`), the rest of the escrow goes back to the submitter.
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
        Slashed,
        Failed,
        /// A dispute found the node's data unavailable: escrow refunded, node
        /// unpaid, not slashed.
        Voided
    }

    /// @notice A job as the chain knows it: three slots at submission (the
    /// node's slot is written at assignment).
    struct Job {
        address submitter;
        Status status;
        uint64 maxSteps; // the step count the spec implies
        uint128 pricePerStep; // wei per verified step
        bytes32 nodeId;
        bytes32 specCid; // BLAKE3 CID digest of the job spec (content-addressed storage)
    }

    DealMarket public immutable market;
    NodeCertRegistry public immutable nodes;
    mapping(bytes32 jobId => Job) private _jobs;

    /// @notice `jobId` was already submitted.
    error JobExists(bytes32 jobId);
    /// @notice No job `jobId`.
    error UnknownJob(bytes32 jobId);
    /// @notice A submission with no budget.
    error Unfunded();
    /// @notice The budget is below `maxSteps × pricePerStep`.
    error BudgetBelowEstimate(uint256 budget, uint256 estimate);
    /// @notice A zero job id, spec CID or `maxSteps`.
    error InvalidJob();
    /// @notice The job is not in a status that allows this.
    error WrongStatus(bytes32 jobId, Status status);
    /// @notice The node is unknown, inactive, uncertified or under-staked.
    error NodeNotEligible(bytes32 nodeId);
    /// @notice Only the job's submitter may do this.
    error NotSubmitter(bytes32 jobId, address caller);
    /// @notice Only the assigned node's operator or a scheduler may do this.
    error NotAssignedNodeOrScheduler(bytes32 jobId, address caller);

    /// @notice A job was submitted with `budget` wei locked in escrow.
    event JobSubmitted(
        bytes32 indexed jobId,
        address indexed submitter,
        bytes32 specCid,
        uint64 maxSteps,
        uint128 pricePerStep,
        uint256 budget
    );
    /// @notice A job was assigned to a node.
    event JobAssigned(bytes32 indexed jobId, bytes32 indexed nodeId);
    /// @notice The submitter cancelled a job before assignment; escrow refunded.
    event JobCancelled(bytes32 indexed jobId);
    /// @notice An assigned job failed (reported by `by`); escrow refunded.
    event JobFailed(bytes32 indexed jobId, bytes32 indexed nodeId, address by);
    /// @notice ProofOfCompute moved a job to `status`.
    event JobStatusChanged(bytes32 indexed jobId, Status status);

    constructor(address admin, DealMarket market_, NodeCertRegistry nodes_) Roles(admin) {
        market = market_;
        nodes = nodes_;
    }

    /// @notice Submits a job, locking `msg.value` as its escrow in DealMarket.
    /// The budget must cover `maxSteps × pricePerStep`; at settlement the
    /// node gets committed steps × `pricePerStep` and the submitter the rest.
    /// @param jobId the engine's job id (non-zero, never reused).
    /// @param specCid BLAKE3 CID digest of the job spec (model, dataset,
    /// kind, hyper-parameters, resources) in content-addressed storage;
    /// non-zero. Jurors and auditors fetch the spec by it.
    /// @param maxSteps the step count the spec implies (non-zero): the most
    /// steps the node may commit and be paid for.
    /// @param pricePerStep price in wei per verified step, fixed for the job.
    function submitJob(bytes32 jobId, bytes32 specCid, uint64 maxSteps, uint128 pricePerStep) external payable {
        if (msg.value == 0) revert Unfunded();
        if (jobId == bytes32(0) || specCid == bytes32(0) || maxSteps == 0) revert InvalidJob();
        if (_jobs[jobId].status != Status.None) revert JobExists(jobId);
        uint256 estimate = uint256(maxSteps) * pricePerStep;
        if (msg.value < estimate) revert BudgetBelowEstimate(msg.value, estimate);
        _jobs[jobId] = Job(msg.sender, Status.Submitted, maxSteps, pricePerStep, bytes32(0), specCid);
        market.lockEscrow{value: msg.value}(jobId, msg.sender);
        emit JobSubmitted(jobId, msg.sender, specCid, maxSteps, pricePerStep, msg.value);
    }

    /// @notice Assigns a submitted job to an eligible (active, certified,
    /// staked) node (SCHEDULER role).
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

    /// @notice Ends an assigned job that will not complete and refunds its
    /// escrow in full: the assigned node's operator gives up, or a scheduler
    /// declares the node lost.
    function fail(bytes32 jobId) external {
        Job storage j = _existing(jobId);
        if (j.status != Status.Assigned) revert WrongStatus(jobId, j.status);
        if (!hasRole(SCHEDULER, msg.sender) && nodes.operatorOf(j.nodeId) != msg.sender) {
            revert NotAssignedNodeOrScheduler(jobId, msg.sender);
        }
        j.status = Status.Failed;
        emit JobFailed(jobId, j.nodeId, msg.sender);
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
