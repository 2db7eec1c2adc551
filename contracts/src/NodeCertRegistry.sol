// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {Roles, Guarded} from "./Roles.sol";

/// @title NodeCertRegistry
/// @notice Compute nodes: their operators, GPUs, region, price and stake;
/// certification by attestors; reputation; slashing; unbonding.
contract NodeCertRegistry is Roles, Guarded {
    /// @notice May certify and revoke nodes.
    bytes32 public constant ATTESTOR = keccak256("ATTESTOR");
    /// @notice May change reputation and slash (ProofOfCompute).
    bytes32 public constant SLASHER = keccak256("SLASHER");

    /// @notice A registered node.
    struct Node {
        address operator;
        uint64 pricePerGpuSecond; // wei
        uint32 gpuCount;
        uint32 gpuMemoryMiB;
        bool certified;
        bool active;
        uint128 stake; // wei
        uint64 unbondingAt; // 0 while active
        uint32 reputation;
        bytes32 runtimesHash; // keccak of the sorted runtime list the node serves
        string region;
    }

    /// @notice Least stake a node must post.
    uint256 public immutable minStake;
    /// @notice Seconds between deregistration and stake withdrawal.
    uint64 public immutable unbondingDelay;

    mapping(bytes32 nodeId => Node) private _nodes;
    bytes32[] private _ids;

    error NodeExists(bytes32 nodeId);
    error UnknownNode(bytes32 nodeId);
    error StakeTooLow(uint256 sent, uint256 required);
    error NotOperator(bytes32 nodeId, address caller);
    error InvalidCapabilities();
    error StillBonded(uint64 until);
    error NotDeregistered(bytes32 nodeId);
    error SlashExceedsStake(uint256 amount, uint256 stake);

    event NodeRegistered(
        bytes32 indexed nodeId,
        address indexed operator,
        uint32 gpuCount,
        uint32 gpuMemoryMiB,
        uint64 pricePerGpuSecond,
        string region,
        bytes32 runtimesHash,
        uint256 stake
    );
    event NodeCertified(bytes32 indexed nodeId, address indexed attestor);
    event NodeRevoked(bytes32 indexed nodeId, address indexed attestor);
    event ReputationChanged(bytes32 indexed nodeId, uint32 reputation);
    event NodeSlashed(bytes32 indexed nodeId, uint256 amount, address indexed to);
    event NodeDeregistered(bytes32 indexed nodeId, uint64 unbondingAt);
    event StakeWithdrawn(bytes32 indexed nodeId, address indexed operator, uint256 amount);

    constructor(address admin, uint256 minStake_, uint64 unbondingDelay_) Roles(admin) {
        minStake = minStake_;
        unbondingDelay = unbondingDelay_;
    }

    /// @notice Registers `nodeId`, operated by the caller, staking `msg.value`.
    function register(
        bytes32 nodeId,
        uint32 gpuCount,
        uint32 gpuMemoryMiB,
        uint64 pricePerGpuSecond,
        string calldata region,
        bytes32 runtimesHash
    ) external payable {
        if (_nodes[nodeId].operator != address(0)) revert NodeExists(nodeId);
        if (msg.value < minStake) revert StakeTooLow(msg.value, minStake);
        if (gpuCount > 64 || (gpuCount > 0 && gpuMemoryMiB == 0) || bytes(region).length > 64) {
            revert InvalidCapabilities();
        }
        _nodes[nodeId] = Node({
            operator: msg.sender,
            pricePerGpuSecond: pricePerGpuSecond,
            gpuCount: gpuCount,
            gpuMemoryMiB: gpuMemoryMiB,
            certified: false,
            active: true,
            stake: uint128(msg.value),
            unbondingAt: 0,
            reputation: 0,
            runtimesHash: runtimesHash,
            region: region
        });
        _ids.push(nodeId);
        emit NodeRegistered(
            nodeId, msg.sender, gpuCount, gpuMemoryMiB, pricePerGpuSecond, region, runtimesHash, msg.value
        );
    }

    /// @notice Certifies a node (attestors only).
    function certify(bytes32 nodeId) external onlyRole(ATTESTOR) {
        Node storage n = _existing(nodeId);
        n.certified = true;
        emit NodeCertified(nodeId, msg.sender);
    }

    /// @notice Revokes a node's certificate (attestors only).
    function revoke(bytes32 nodeId) external onlyRole(ATTESTOR) {
        Node storage n = _existing(nodeId);
        n.certified = false;
        emit NodeRevoked(nodeId, msg.sender);
    }

    /// @notice Adds `delta` (may be negative) to a node's reputation, floored at 0.
    function adjustReputation(bytes32 nodeId, int32 delta) external onlyRole(SLASHER) {
        Node storage n = _existing(nodeId);
        int64 r = int64(uint64(n.reputation)) + delta;
        n.reputation = r < 0 ? 0 : uint32(uint64(r));
        emit ReputationChanged(nodeId, n.reputation);
    }

    /// @notice Takes `amount` of a node's stake and sends it to `to` (SLASHER only).
    function slash(bytes32 nodeId, uint256 amount, address to) external onlyRole(SLASHER) nonReentrant {
        Node storage n = _existing(nodeId);
        if (amount > n.stake) revert SlashExceedsStake(amount, n.stake);
        n.stake -= uint128(amount);
        n.certified = false;
        emit NodeSlashed(nodeId, amount, to);
        _send(to, amount);
    }

    /// @notice Stops taking work; the stake unbonds for `unbondingDelay`.
    function deregister(bytes32 nodeId) external {
        Node storage n = _existing(nodeId);
        if (n.operator != msg.sender) revert NotOperator(nodeId, msg.sender);
        n.active = false;
        n.unbondingAt = uint64(block.timestamp) + unbondingDelay;
        emit NodeDeregistered(nodeId, n.unbondingAt);
    }

    /// @notice Returns the stake of a deregistered node after unbonding.
    function withdraw(bytes32 nodeId) external nonReentrant {
        Node storage n = _existing(nodeId);
        if (n.operator != msg.sender) revert NotOperator(nodeId, msg.sender);
        if (n.active) revert NotDeregistered(nodeId);
        if (block.timestamp < n.unbondingAt) revert StillBonded(n.unbondingAt);
        uint256 amount = n.stake;
        n.stake = 0;
        emit StakeWithdrawn(nodeId, msg.sender, amount);
        _send(msg.sender, amount);
    }

    /// @notice Whether a node may take jobs: active, certified, staked.
    function isEligible(bytes32 nodeId) external view returns (bool) {
        Node storage n = _nodes[nodeId];
        return n.active && n.certified && n.stake >= minStake;
    }

    /// @notice A node's record.
    function getNode(bytes32 nodeId) external view returns (Node memory) {
        return _existing(nodeId);
    }

    /// @notice The operator of a node (zero for an unknown node).
    function operatorOf(bytes32 nodeId) external view returns (address) {
        return _nodes[nodeId].operator;
    }

    /// @notice Number of nodes ever registered.
    function nodeCount() external view returns (uint256) {
        return _ids.length;
    }

    /// @notice The `i`th registered node id.
    function nodeIdAt(uint256 i) external view returns (bytes32) {
        return _ids[i];
    }

    function _existing(bytes32 nodeId) private view returns (Node storage n) {
        n = _nodes[nodeId];
        if (n.operator == address(0)) revert UnknownNode(nodeId);
    }
}
