// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {Roles, Guarded} from "./Roles.sol";

/// @title NodeCertRegistry
/// @notice Compute nodes: their operators, GPUs (count, memory, model),
/// region, price per GPU-second, runtimes, endpoint and stake; certification
/// by attestors; reputation and slashing by ProofOfCompute; deregistration,
/// unbonding and stake withdrawal. A node takes jobs while it is active,
/// certified, staked at least `minStake` and never slashed (`isEligible`).
/// A slash is for good: no role (admin and attestors included) can undo it.
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
        bool slashed; // slashed once: never certified again
    }

    /// @notice What a node says about itself beyond the scheduling fields:
    /// the GPU model (e.g. "NVIDIA H100 80GB") and how to reach it (an
    /// endpoint URL or a metadata document address).
    struct NodeMetadata {
        string gpuModel;
        string endpoint;
    }

    /// @notice Longest region string.
    uint256 public constant MAX_REGION = 64;
    /// @notice Longest GPU model string.
    uint256 public constant MAX_GPU_MODEL = 64;
    /// @notice Longest endpoint/metadata string.
    uint256 public constant MAX_ENDPOINT = 256;
    /// @notice Most GPUs one node may declare.
    uint32 public constant MAX_GPUS = 64;

    /// @notice Least stake a node must post.
    uint256 public immutable minStake;
    /// @notice Seconds between deregistration and stake withdrawal.
    uint64 public immutable unbondingDelay;

    mapping(bytes32 nodeId => Node) private _nodes;
    mapping(bytes32 nodeId => NodeMetadata) private _metadata;
    bytes32[] private _ids;

    /// @notice `nodeId` is already registered (ids are never reused).
    error NodeExists(bytes32 nodeId);
    /// @notice No node `nodeId`.
    error UnknownNode(bytes32 nodeId);
    /// @notice The stake sent is below `minStake`.
    error StakeTooLow(uint256 sent, uint256 required);
    /// @notice The stake would not fit the node record (above 2^128 wei).
    error StakeTooHigh(uint256 stake);
    /// @notice Only the node's operator may do this.
    error NotOperator(bytes32 nodeId, address caller);
    /// @notice GPU count above MAX_GPUS, GPUs without memory, or region too long.
    error InvalidCapabilities();
    /// @notice GPU model or endpoint too long.
    error InvalidMetadata();
    /// @notice The stake is unbonding until `until`.
    error StillBonded(uint64 until);
    /// @notice The node must deregister before withdrawing its stake.
    error NotDeregistered(bytes32 nodeId);
    /// @notice The node has deregistered.
    error NotActive(bytes32 nodeId);
    /// @notice A slash above the node's stake.
    error SlashExceedsStake(uint256 amount, uint256 stake);
    /// @notice A stake top-up of zero.
    error Unfunded();
    /// @notice The zero node id is reserved (it means "no node").
    error InvalidNodeId();
    /// @notice The node's stake was already withdrawn (or fully slashed).
    error NoStake(bytes32 nodeId);
    /// @notice The node was slashed: it can never be certified again.
    error NodeWasSlashed(bytes32 nodeId);

    /// @notice A node was registered with `stake` wei.
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
    /// @notice A node's GPU model and endpoint were set.
    event NodeMetadataSet(bytes32 indexed nodeId, string gpuModel, string endpoint);
    /// @notice An attestor certified a node.
    event NodeCertified(bytes32 indexed nodeId, address indexed attestor);
    /// @notice An attestor revoked a node's certificate.
    event NodeRevoked(bytes32 indexed nodeId, address indexed attestor);
    /// @notice A node's reputation is now `reputation`.
    event ReputationChanged(bytes32 indexed nodeId, uint32 reputation);
    /// @notice `amount` of a node's stake was taken and paid to `to`.
    event NodeSlashed(bytes32 indexed nodeId, uint256 amount, address indexed to);
    /// @notice A node's stake grew by `amount` to `stake`.
    event StakeAdded(bytes32 indexed nodeId, uint256 amount, uint256 stake);
    /// @notice A node deregistered; its stake can be withdrawn from `unbondingAt`.
    event NodeDeregistered(bytes32 indexed nodeId, uint64 unbondingAt);
    /// @notice The operator withdrew the node's remaining stake.
    event StakeWithdrawn(bytes32 indexed nodeId, address indexed operator, uint256 amount);

    constructor(address admin, uint256 minStake_, uint64 unbondingDelay_) Roles(admin) {
        minStake = minStake_;
        unbondingDelay = unbondingDelay_;
    }

    /// @notice Registers `nodeId`, operated by the caller, staking `msg.value`
    /// (at least `minStake`). The node takes jobs once an attestor certifies it.
    /// @param gpuCount GPUs offered (at most MAX_GPUS; 0 for a CPU node).
    /// @param gpuMemoryMiB memory per GPU in MiB (non-zero when there are GPUs).
    /// @param pricePerGpuSecond asking price in wei per GPU-second.
    /// @param region free-form region label (at most MAX_REGION bytes).
    /// @param runtimesHash keccak256 of the sorted, newline-joined runtime ids.
    function register(
        bytes32 nodeId,
        uint32 gpuCount,
        uint32 gpuMemoryMiB,
        uint64 pricePerGpuSecond,
        string calldata region,
        bytes32 runtimesHash
    ) external payable {
        if (nodeId == bytes32(0)) revert InvalidNodeId();
        if (_nodes[nodeId].operator != address(0)) revert NodeExists(nodeId);
        if (msg.value < minStake) revert StakeTooLow(msg.value, minStake);
        if (msg.value > type(uint128).max) revert StakeTooHigh(msg.value);
        if (gpuCount > MAX_GPUS || (gpuCount > 0 && gpuMemoryMiB == 0) || bytes(region).length > MAX_REGION) {
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
            region: region,
            slashed: false
        });
        _ids.push(nodeId);
        emit NodeRegistered(
            nodeId, msg.sender, gpuCount, gpuMemoryMiB, pricePerGpuSecond, region, runtimesHash, msg.value
        );
    }

    /// @notice Sets a node's GPU model and endpoint/metadata string (operator only).
    function setMetadata(bytes32 nodeId, string calldata gpuModel, string calldata endpoint) external {
        Node storage n = _existing(nodeId);
        if (n.operator != msg.sender) revert NotOperator(nodeId, msg.sender);
        if (bytes(gpuModel).length > MAX_GPU_MODEL || bytes(endpoint).length > MAX_ENDPOINT) {
            revert InvalidMetadata();
        }
        _metadata[nodeId] = NodeMetadata(gpuModel, endpoint);
        emit NodeMetadataSet(nodeId, gpuModel, endpoint);
    }

    /// @notice Adds `msg.value` to an active node's stake (anyone may top
    /// up). A slashed node stays ineligible whatever its stake.
    function addStake(bytes32 nodeId) external payable {
        Node storage n = _existing(nodeId);
        if (!n.active) revert NotActive(nodeId);
        if (msg.value == 0) revert Unfunded();
        uint256 stake = n.stake + msg.value;
        if (stake > type(uint128).max) revert StakeTooHigh(stake);
        n.stake = uint128(stake);
        emit StakeAdded(nodeId, msg.value, stake);
    }

    /// @notice Certifies a node (attestors only). A slashed node is slashed
    /// for good: no role can certify it again (`NodeWasSlashed`).
    function certify(bytes32 nodeId) external onlyRole(ATTESTOR) {
        Node storage n = _existing(nodeId);
        if (n.slashed) revert NodeWasSlashed(nodeId);
        n.certified = true;
        emit NodeCertified(nodeId, msg.sender);
    }

    /// @notice Revokes a node's certificate (attestors only).
    function revoke(bytes32 nodeId) external onlyRole(ATTESTOR) {
        Node storage n = _existing(nodeId);
        n.certified = false;
        emit NodeRevoked(nodeId, msg.sender);
    }

    /// @notice Adds `delta` (may be negative) to a node's reputation, kept
    /// within [0, 2^32 - 1] (SLASHER only: ProofOfCompute adds 1 per
    /// finalized job and takes 10 per upheld challenge).
    function adjustReputation(bytes32 nodeId, int32 delta) external onlyRole(SLASHER) {
        Node storage n = _existing(nodeId);
        int64 r = int64(uint64(n.reputation)) + delta;
        if (r < 0) r = 0;
        if (r > int64(uint64(type(uint32).max))) r = int64(uint64(type(uint32).max));
        n.reputation = uint32(uint64(r));
        emit ReputationChanged(nodeId, n.reputation);
    }

    /// @notice Takes `amount` of a node's stake, decertifies the node, marks
    /// it slashed for good (no function clears the mark) and pays the amount
    /// to `to` (SLASHER only: ProofOfCompute). Works during unbonding too,
    /// which is what unbonding is for.
    function slash(bytes32 nodeId, uint256 amount, address to) external onlyRole(SLASHER) nonReentrant {
        Node storage n = _existing(nodeId);
        if (amount > n.stake) revert SlashExceedsStake(amount, n.stake);
        n.stake -= uint128(amount);
        n.certified = false;
        n.slashed = true;
        emit NodeSlashed(nodeId, amount, to);
        _pay(to, amount);
    }

    /// @notice Stops taking work; the stake unbonds for `unbondingDelay`
    /// (operator only, once).
    function deregister(bytes32 nodeId) external {
        Node storage n = _existing(nodeId);
        if (n.operator != msg.sender) revert NotOperator(nodeId, msg.sender);
        if (!n.active) revert NotActive(nodeId);
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
        if (amount == 0) revert NoStake(nodeId);
        n.stake = 0;
        emit StakeWithdrawn(nodeId, msg.sender, amount);
        _sendOrRevert(msg.sender, amount);
    }

    /// @notice Whether a node may take jobs: active, certified, staked, and
    /// never slashed.
    function isEligible(bytes32 nodeId) external view returns (bool) {
        Node storage n = _nodes[nodeId];
        return n.active && n.certified && n.stake >= minStake && !n.slashed;
    }

    /// @notice A node's record.
    function getNode(bytes32 nodeId) external view returns (Node memory) {
        return _existing(nodeId);
    }

    /// @notice A node's GPU model and endpoint (empty strings until set).
    function metadataOf(bytes32 nodeId) external view returns (NodeMetadata memory) {
        _existing(nodeId);
        return _metadata[nodeId];
    }

    /// @notice The operator of a node (zero for an unknown node).
    function operatorOf(bytes32 nodeId) external view returns (address) {
        return _nodes[nodeId].operator;
    }

    /// @notice Number of nodes ever registered.
    function nodeCount() external view returns (uint256) {
        return _ids.length;
    }

    /// @notice The `i`th registered node id (registration order).
    function nodeIdAt(uint256 i) external view returns (bytes32) {
        return _ids[i];
    }

    /// @notice Up to `limit` node ids from position `offset` (registration
    /// order); shorter or empty past the end.
    function nodeIds(uint256 offset, uint256 limit) external view returns (bytes32[] memory ids) {
        uint256 total = _ids.length;
        uint256 end = offset >= total ? offset : (total - offset > limit ? offset + limit : total);
        ids = new bytes32[](end - offset);
        for (uint256 i = offset; i < end; i++) {
            ids[i - offset] = _ids[i];
        }
    }

    function _existing(bytes32 nodeId) private view returns (Node storage n) {
        n = _nodes[nodeId];
        if (n.operator == address(0)) revert UnknownNode(nodeId);
    }
}
