// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {Roles, Guarded} from "./Roles.sol";

/// @title DealMarket
/// @notice Storage deals, and the compute escrow of every job: locked at
/// submission, paid to the node and refunded to the submitter at
/// settlement. Value moves by direct transfer behind a reentrancy guard;
/// a recipient that refuses value makes the whole call revert
/// (`TransferFailed`), so escrow is never half-settled.
///
/// Invariant: for every job, escrow in = payout + refund (+ 0 left), and
/// the contract's balance equals the sum of open escrows and unpaid deals.
contract DealMarket is Roles, Guarded {
    /// @notice May lock and refund escrow at submission/cancel (AIJobManager).
    bytes32 public constant ESCROW = keccak256("ESCROW");
    /// @notice May settle and refund escrow after proofs (ProofOfCompute).
    bytes32 public constant SETTLER = keccak256("SETTLER");

    /// @notice A job's escrow, in one storage slot: `amount` is zero once
    /// settled or refunded (a lock of zero is refused, so zero means closed).
    struct Escrow {
        address submitter;
        uint96 amount;
    }

    /// @notice A job's escrow as `escrowOf` reports it.
    struct EscrowView {
        address submitter;
        uint256 amount;
        bool closed;
    }

    /// @notice A storage deal, paid up front and released per month.
    struct Deal {
        address client;
        address provider;
        bytes32 contentId;
        uint64 sizeBytes;
        uint16 replicas;
        uint16 months;
        uint64 start;
        uint128 price;
        uint128 paid;
    }

    mapping(bytes32 jobId => Escrow) private _escrows;
    mapping(uint256 dealId => Deal) private _deals;
    uint256 public dealCount;

    error EscrowExists(bytes32 jobId);
    error UnknownEscrow(bytes32 jobId);
    error EscrowClosed(bytes32 jobId);
    error PayoutExceedsEscrow(uint256 payout, uint256 escrow);
    error EscrowTooLarge(uint256 amount);
    error Unfunded();
    error InvalidDeal();
    error UnknownDeal(uint256 dealId);
    error NotProvider(uint256 dealId, address caller);
    error NothingDue(uint256 dealId);

    event EscrowLocked(bytes32 indexed jobId, address indexed submitter, uint256 amount);
    event EscrowSettled(bytes32 indexed jobId, address indexed payee, uint256 payout, uint256 refund);
    event EscrowRefunded(bytes32 indexed jobId, address indexed submitter, uint256 amount);
    event DealCreated(
        uint256 indexed dealId,
        address indexed client,
        address indexed provider,
        bytes32 contentId,
        uint64 sizeBytes,
        uint16 replicas,
        uint16 months,
        uint256 price
    );
    event DealPaid(uint256 indexed dealId, address indexed provider, uint256 amount);

    constructor(address admin) Roles(admin) {}

    /// @notice Locks `msg.value` as the escrow of `jobId` (ESCROW role).
    function lockEscrow(bytes32 jobId, address submitter) external payable onlyRole(ESCROW) {
        if (msg.value == 0) revert Unfunded();
        if (_escrows[jobId].submitter != address(0)) revert EscrowExists(jobId);
        if (msg.value > type(uint96).max) revert EscrowTooLarge(msg.value);
        _escrows[jobId] = Escrow(submitter, uint96(msg.value));
        emit EscrowLocked(jobId, submitter, msg.value);
    }

    /// @notice Pays `payout` to `payee` and refunds the rest (SETTLER role).
    function settle(bytes32 jobId, address payee, uint256 payout) external onlyRole(SETTLER) nonReentrant {
        Escrow storage e = _open(jobId);
        uint256 held = e.amount;
        if (payout > held) revert PayoutExceedsEscrow(payout, held);
        uint256 refund = held - payout;
        e.amount = 0;
        emit EscrowSettled(jobId, payee, payout, refund);
        _send(payee, payout);
        _send(e.submitter, refund);
    }

    /// @notice Refunds the whole escrow to the submitter (a cancelled job, or
    /// an upheld challenge). ESCROW or SETTLER role.
    function refund(bytes32 jobId) external nonReentrant {
        if (!hasRole(ESCROW, msg.sender) && !hasRole(SETTLER, msg.sender)) revert Unauthorized(SETTLER, msg.sender);
        Escrow storage e = _open(jobId);
        uint256 held = e.amount;
        e.amount = 0;
        emit EscrowRefunded(jobId, e.submitter, held);
        _send(e.submitter, held);
    }

    /// @notice A job's escrow.
    function escrowOf(bytes32 jobId) external view returns (EscrowView memory) {
        Escrow storage e = _escrows[jobId];
        return EscrowView(e.submitter, e.amount, e.submitter != address(0) && e.amount == 0);
    }

    /// @notice Opens a storage deal paying `msg.value` to `provider` over `months`.
    function createDeal(bytes32 contentId, uint64 sizeBytes, uint16 replicas, uint16 months, address provider)
        external
        payable
        returns (uint256 dealId)
    {
        if (msg.value == 0) revert Unfunded();
        if (contentId == bytes32(0) || replicas == 0 || months == 0 || provider == address(0)) revert InvalidDeal();
        dealId = ++dealCount;
        _deals[dealId] = Deal(
            msg.sender, provider, contentId, sizeBytes, replicas, months, uint64(block.timestamp), uint128(msg.value), 0
        );
        emit DealCreated(dealId, msg.sender, provider, contentId, sizeBytes, replicas, months, msg.value);
    }

    /// @notice Pays the provider what has accrued: price × elapsed months / months.
    function claimDeal(uint256 dealId) external nonReentrant {
        Deal storage d = _deals[dealId];
        if (d.client == address(0)) revert UnknownDeal(dealId);
        if (msg.sender != d.provider) revert NotProvider(dealId, msg.sender);
        uint256 elapsed = (block.timestamp - d.start) / 30 days;
        if (elapsed > d.months) elapsed = d.months;
        uint256 due = uint256(d.price) * elapsed / d.months - d.paid;
        if (due == 0) revert NothingDue(dealId);
        d.paid += uint128(due);
        emit DealPaid(dealId, d.provider, due);
        _send(d.provider, due);
    }

    /// @notice A storage deal.
    function getDeal(uint256 dealId) external view returns (Deal memory d) {
        d = _deals[dealId];
        if (d.client == address(0)) revert UnknownDeal(dealId);
    }

    function _open(bytes32 jobId) private view returns (Escrow storage e) {
        e = _escrows[jobId];
        if (e.submitter == address(0)) revert UnknownEscrow(jobId);
        if (e.amount == 0) revert EscrowClosed(jobId);
    }
}
