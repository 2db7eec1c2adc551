// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {Roles, Guarded} from "./Roles.sol";

/// @title DealMarket
/// @notice Storage deals, and the compute escrow of every job: locked at
/// submission, paid to the node and refunded to the submitter at
/// settlement (or refunded whole on cancellation, failure or an upheld
/// challenge).
///
/// Value moves by direct transfer behind a reentrancy guard, with state
/// written before any transfer (checks-effects-interactions). A recipient
/// that refuses a payment cannot block the settlement: the amount is
/// credited to `owed[recipient]` and pulled later with `withdrawOwed`
/// (see `Guarded`).
///
/// Invariant: for every job, escrow in = payout + refund; for every deal,
/// price = paid to provider + refunded to client; the contract's balance
/// equals open escrows + unreleased deal money + `owed` credits.
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
        bool cancelled;
        uint128 price;
        uint128 paid;
    }

    mapping(bytes32 jobId => Escrow) private _escrows;
    mapping(uint256 dealId => Deal) private _deals;
    uint256 public dealCount;

    /// @notice `jobId` already has an escrow.
    error EscrowExists(bytes32 jobId);
    /// @notice `jobId` has no escrow.
    error UnknownEscrow(bytes32 jobId);
    /// @notice `jobId`'s escrow was already settled or refunded.
    error EscrowClosed(bytes32 jobId);
    /// @notice A settlement would pay the node more than the escrow holds.
    error PayoutExceedsEscrow(uint256 payout, uint256 escrow);
    /// @notice More than 2^96 wei (escrow) or 2^128 wei (deal) in one go.
    error EscrowTooLarge(uint256 amount);
    /// @notice No value sent.
    error Unfunded();
    /// @notice A deal with zero content id, replicas or months, or no provider.
    error InvalidDeal();
    /// @notice No deal `dealId`.
    error UnknownDeal(uint256 dealId);
    /// @notice Only the deal's provider may claim it.
    error NotProvider(uint256 dealId, address caller);
    /// @notice Only the deal's client may cancel it.
    error NotClient(uint256 dealId, address caller);
    /// @notice The deal was cancelled.
    error DealCancelled(uint256 dealId);
    /// @notice Nothing has accrued to the provider since the last claim.
    error NothingDue(uint256 dealId);

    /// @notice `amount` was locked as `jobId`'s escrow.
    event EscrowLocked(bytes32 indexed jobId, address indexed submitter, uint256 amount);
    /// @notice `jobId` settled: `payout` to `payee`, `refund` to the submitter.
    event EscrowSettled(bytes32 indexed jobId, address indexed payee, uint256 payout, uint256 refund);
    /// @notice `jobId`'s whole escrow went back to its submitter.
    event EscrowRefunded(bytes32 indexed jobId, address indexed submitter, uint256 amount);
    /// @notice A storage deal was opened and paid for up front.
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
    /// @notice `amount` of a deal's price was released to its provider.
    event DealPaid(uint256 indexed dealId, address indexed provider, uint256 amount);
    /// @notice The client ended a deal: the provider got what had accrued,
    /// the client `refund`.
    event DealEnded(uint256 indexed dealId, address indexed client, uint256 paidToProvider, uint256 refund);

    constructor(address admin) Roles(admin) {}

    /// @notice Locks `msg.value` as the escrow of `jobId` (ESCROW role:
    /// AIJobManager at submission).
    function lockEscrow(bytes32 jobId, address submitter) external payable onlyRole(ESCROW) {
        if (msg.value == 0) revert Unfunded();
        if (_escrows[jobId].submitter != address(0)) revert EscrowExists(jobId);
        if (msg.value > type(uint96).max) revert EscrowTooLarge(msg.value);
        _escrows[jobId] = Escrow(submitter, uint96(msg.value));
        emit EscrowLocked(jobId, submitter, msg.value);
    }

    /// @notice Pays `payout` to `payee` and refunds the rest of the escrow to
    /// the submitter (SETTLER role: ProofOfCompute at finalization).
    function settle(bytes32 jobId, address payee, uint256 payout) external onlyRole(SETTLER) nonReentrant {
        Escrow storage e = _open(jobId);
        uint256 held = e.amount;
        if (payout > held) revert PayoutExceedsEscrow(payout, held);
        uint256 rest = held - payout;
        e.amount = 0;
        emit EscrowSettled(jobId, payee, payout, rest);
        _pay(payee, payout);
        _pay(e.submitter, rest);
    }

    /// @notice Refunds the whole escrow to the submitter: a cancelled or
    /// failed job (ESCROW role: AIJobManager) or an upheld challenge, the
    /// slash-refund path (SETTLER role: ProofOfCompute).
    function refund(bytes32 jobId) external nonReentrant {
        if (!hasRole(ESCROW, msg.sender) && !hasRole(SETTLER, msg.sender)) revert Unauthorized(SETTLER, msg.sender);
        Escrow storage e = _open(jobId);
        uint256 held = e.amount;
        e.amount = 0;
        emit EscrowRefunded(jobId, e.submitter, held);
        _pay(e.submitter, held);
    }

    /// @notice A job's escrow.
    function escrowOf(bytes32 jobId) external view returns (EscrowView memory) {
        Escrow storage e = _escrows[jobId];
        return EscrowView(e.submitter, e.amount, e.submitter != address(0) && e.amount == 0);
    }

    /// @notice Opens a storage deal: `provider` keeps `replicas` copies of
    /// `contentId` for `months` (30-day periods) for the price `msg.value`,
    /// paid up front, held here and released to the provider month by month.
    /// Ids are sequential from 1.
    function createDeal(bytes32 contentId, uint64 sizeBytes, uint16 replicas, uint16 months, address provider)
        external
        payable
        returns (uint256 dealId)
    {
        if (msg.value == 0) revert Unfunded();
        if (contentId == bytes32(0) || replicas == 0 || months == 0 || provider == address(0)) revert InvalidDeal();
        if (msg.value > type(uint128).max) revert EscrowTooLarge(msg.value);
        dealId = ++dealCount;
        _deals[dealId] = Deal(
            msg.sender,
            provider,
            contentId,
            sizeBytes,
            replicas,
            months,
            uint64(block.timestamp),
            false,
            uint128(msg.value),
            0
        );
        emit DealCreated(dealId, msg.sender, provider, contentId, sizeBytes, replicas, months, msg.value);
    }

    /// @notice Pays the provider what has accrued and is unpaid:
    /// price × whole months elapsed / months − paid (provider only).
    function claimDeal(uint256 dealId) external nonReentrant {
        Deal storage d = _deal(dealId);
        if (msg.sender != d.provider) revert NotProvider(dealId, msg.sender);
        if (d.cancelled) revert DealCancelled(dealId);
        uint256 due = _accrued(d) - d.paid;
        if (due == 0) revert NothingDue(dealId);
        d.paid += uint128(due);
        emit DealPaid(dealId, d.provider, due);
        _pay(d.provider, due);
    }

    /// @notice Ends a deal early (client only): the provider is paid what has
    /// accrued so far, the client gets the rest of the price back.
    function cancelDeal(uint256 dealId) external nonReentrant {
        Deal storage d = _deal(dealId);
        if (msg.sender != d.client) revert NotClient(dealId, msg.sender);
        if (d.cancelled) revert DealCancelled(dealId);
        uint256 accrued = _accrued(d);
        uint256 due = accrued - d.paid;
        uint256 back = uint256(d.price) - accrued;
        d.cancelled = true;
        d.paid = uint128(accrued);
        d.price = uint128(accrued);
        emit DealEnded(dealId, d.client, due, back);
        _pay(d.provider, due);
        _pay(d.client, back);
    }

    /// @notice A storage deal (after cancellation `price` is what the
    /// provider was paid in total).
    function getDeal(uint256 dealId) external view returns (Deal memory) {
        return _deal(dealId);
    }

    function _deal(uint256 dealId) private view returns (Deal storage d) {
        d = _deals[dealId];
        if (d.client == address(0)) revert UnknownDeal(dealId);
    }

    /// @dev price × whole 30-day periods elapsed (capped at `months`) / months.
    function _accrued(Deal storage d) private view returns (uint256) {
        uint256 elapsed = (block.timestamp - d.start) / 30 days;
        if (elapsed > d.months) elapsed = d.months;
        return uint256(d.price) * elapsed / d.months;
    }

    function _open(bytes32 jobId) private view returns (Escrow storage e) {
        e = _escrows[jobId];
        if (e.submitter == address(0)) revert UnknownEscrow(jobId);
        if (e.amount == 0) revert EscrowClosed(jobId);
    }
}
